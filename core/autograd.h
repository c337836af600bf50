// Reverse-mode autograd on a tape. An op run while gradients are recorded pushes a Node holding where its
// inputs' and its output's gradients go (their AutogradMeta, not their data) and a backward function;
// backward(loss) walks the tape in reverse, hands each node the gradient of its output and accumulates what
// it returns into its inputs' .grad. First order only.
// What the backward needs of the data, its closure saves (conv its input, relu its output); nothing else is
// kept: an activation no closure saved (an addition's output that a ReLU consumes, a batch norm's output that
// an addition consumes) is freed as soon as the forward lets go of it, as in PyTorch. Leaves (parameters) keep
// their .grad across backward calls until zero_grad; intermediate gradients and each node's closure are freed
// as soon as their node has run, so a saved activation lives only until the last node that needs it.
#pragma once
#include <functional>
#include <vector>

#include "core/tensor.h"

namespace fn {

// Given d(loss)/d(output), returns d(loss)/d(input i) for each input (undefined where not needed).
using BackwardFn = std::function<std::vector<Tensor>(const Tensor& grad_output)>;

// Optional, for an op whose gradient is sparse and goes to input 0 only: adds d(loss)/d(input 0) straight
// into `input_grad`, the gradient that input already holds from its other consumers. Run instead of the
// BackwardFn when that gradient exists, it saves a dense gradient tensor and its addition.
using AccumulateFn = std::function<void(const Tensor& grad_output, Tensor& input_grad)>;

// An input as the backward sees it: where its gradient goes. Empty meta: the input takes no gradient.
struct GradSlot {
  std::shared_ptr<AutogradMeta> meta;
  Shape shape;  // what its gradient must be
  Tensor leaf;  // a leaf that takes a gradient (a parameter) itself, for the leaf-gradient hook
};

struct Node {
  const char* op;
  std::vector<GradSlot> inputs;
  std::shared_ptr<AutogradMeta> output;
  BackwardFn backward;
  AccumulateFn accumulate;  // may be empty
};

bool grad_enabled();

// Within its scope no op is recorded (evaluation, optimizer updates).
class NoGradGuard {
 public:
  NoGradGuard();
  ~NoGradGuard();
  NoGradGuard(const NoGradGuard&) = delete;
  NoGradGuard& operator=(const NoGradGuard&) = delete;

 private:
  bool prev_;
};

// True when recording is on and some input requires a gradient.
bool needs_grad(const std::vector<Tensor>& inputs);

// Records `output = op(inputs)`; marks output as requiring grad. Call only when needs_grad(inputs).
// `accumulate` (optional; see AccumulateFn) is only for ops whose inputs other than input 0 get no gradient.
void record(const char* op, std::vector<Tensor> inputs, Tensor& output, BackwardFn backward,
            AccumulateFn accumulate = nullptr);

// Back-propagates from a scalar loss (seed gradient 1), or from any tensor with an explicit seed gradient.
// The seed is read, never written, and not copied (a leaf root's excepted: a leaf owns its gradient).
// Clears the tape.
void backward(const Tensor& root, const Tensor& seed = Tensor());

void clear_tape();
size_t tape_size();

// Optional: called by backward() with each leaf that requires a gradient as soon as that gradient is final
// for this backward, i.e. right after the earliest-recorded node that takes the leaf as an input has run
// (nodes run in reverse, so no later node can add to it). Leaves used late in the forward (the last layers)
// come first. The leaf's grad() may be undefined when none of its nodes led to the root. Leaves that no
// recorded node takes are not reported. For data-parallel training (dist/bucketer.h): a gradient can be
// sent while the rest of the backward runs. Per thread, like the tape; empty (the default) costs nothing.
using LeafGradHook = std::function<void(const Tensor& leaf)>;
LeafGradHook set_leaf_grad_hook(LeafGradHook hook);  // returns the previous hook; nullptr clears it

// What the last backward() of this thread ran: a few counters, kept so that tests can see which path a
// gradient took (FashionNet's speed depends on landmark_pool's sparse AccumulateFn, docs/architecture.md
// "Autograd"). Reset at the start of every backward; costs a counter per node.
struct BackwardStats {
  int64_t backward_calls = 0;              // nodes run through their BackwardFn
  int64_t accumulate_calls = 0;            // nodes run through their AccumulateFn (sparse, in place)
  std::vector<const char*> accumulated;    // the op of each AccumulateFn call, in the order run
  std::vector<const char*> dense_fallbacks;  // ops that had an AccumulateFn but ran their BackwardFn instead
                                             // (their input had no gradient yet when they ran)
  int64_t grad_copies = 0;  // dense gradients copied because another tensor shared them: a leaf's first
                            // gradient, or one to be added into while shared (see backward() in autograd.cpp)
};
const BackwardStats& last_backward_stats();

}  // namespace fn
