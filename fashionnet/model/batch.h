// A data::Batch (host buffers from the loader) turned into the tensors the graph and the losses take. The
// one place that builds BatchTensors: the trainer, evaluation (fashionnet/eval/inference.cpp) and the
// batches that bench_train_step and the PyTorch parity case make up (a data::Batch filled with random
// values, then to_tensors) all go through it.
#pragma once
#include <cstdint>
#include <vector>

#include "core/tensor.h"
#include "data/loader.h"

namespace fn::fashionnet {

struct BatchTensors {
  int64_t n = 0;
  Tensor images;        // (N, 3, S, S)
  Tensor landmarks;     // (N, 8, 2) input pixels: where landmark_pool looks in training
  Tensor visible;       // (N, 8) 1 visible / 0 not: landmark_pool's and the L2 loss's mask
  Tensor landmarks01;   // (N, 16) targets of landmark_loc, in [0, 1] of the input
  std::vector<int> vis_label;  // N*8: 0 visible, 1 not visible, -1 unknown (no landmark annotation)
  std::vector<int> category;   // N, -1 unknown
  std::vector<int> item;       // N, dense item ids (triplet labels)
  Tensor attr, attr_known;     // (N, A) each; undefined when the data has no attributes
  bool has_landmarks = false;  // some sample of the batch has annotated landmarks
};

// `annotated[i]` (b.n of them): whether image i has landmark annotation; only those images' slots get
// visibility labels (vis_label), the others' are -1 (unknown).
BatchTensors to_tensors(const data::Batch& b, const std::vector<uint8_t>& annotated, Device d);
// The same, with `annotated` from the dataset: ds.samples[b.sample_index[i]].has_landmarks.
BatchTensors to_tensors(const data::Batch& b, const data::Dataset& ds, Device d);

// Rows [begin, end) of a batch (its tensors share the storage): a part whose losses are taken on it alone
// (fashionnet/train/step.h, "Parts").
BatchTensors slice_rows(const BatchTensors& b, int64_t begin, int64_t end);

// The same batch with its tensors on device d (the CUDA-against-CPU tests build theirs on the CPU).
BatchTensors to_device(const BatchTensors& b, Device d);

}  // namespace fn::fashionnet
