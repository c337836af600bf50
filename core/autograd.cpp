#include "core/autograd.h"

#include <unordered_set>

namespace fn {
namespace {
thread_local bool g_grad_enabled = true;
thread_local std::vector<Node> g_tape;
thread_local BackwardStats g_stats;
}  // namespace

const BackwardStats& last_backward_stats() { return g_stats; }

bool grad_enabled() { return g_grad_enabled; }
NoGradGuard::NoGradGuard() : prev_(g_grad_enabled) { g_grad_enabled = false; }
NoGradGuard::~NoGradGuard() { g_grad_enabled = prev_; }

bool needs_grad(const std::vector<Tensor>& inputs) {
  if (!g_grad_enabled) return false;
  for (auto& t : inputs)
    if (t.defined() && t.requires_grad()) return true;
  return false;
}

void record(const char* op, std::vector<Tensor> inputs, Tensor& output, BackwardFn backward, AccumulateFn accumulate) {
  output.set_requires_grad(true);
  output.impl()->is_leaf = false;
  g_tape.push_back(Node{op, std::move(inputs), output, std::move(backward), std::move(accumulate)});
}

void clear_tape() { g_tape.clear(); }
size_t tape_size() { return g_tape.size(); }

namespace {
// After a node has run: its output's gradient (unless a leaf's), its closures' saved tensors and the
// activations only it held are freed, so the peak stays near the forward's.
void release(Node& node) {
  if (!node.output.is_leaf()) node.output.zero_grad();
  node.backward = nullptr;
  node.accumulate = nullptr;
  node.inputs.clear();
  node.output = Tensor();
}
}  // namespace

void backward(const Tensor& root, const Tensor& seed) {
  FN_CHECK(root.defined() && root.requires_grad(), "backward: the root does not require a gradient (",
           root.defined() ? root.describe() : "undefined", "); was anything recorded?");
  Tensor s = seed;
  if (!s.defined()) {
    FN_CHECK(root.numel() == 1, "backward without a seed needs a scalar, got ", root.describe());
    s = Tensor::full(root.shape(), 1.0, root.dtype(), root.device());
  }
  check_same_shape("backward seed", root, s);
  root.impl()->grad = s.clone().impl_ptr();

  std::vector<Node> tape;
  tape.swap(g_tape);  // backward functions must not record; and the tape is consumed
  g_stats = BackwardStats{};
  NoGradGuard no_grad;
  for (auto it = tape.rbegin(); it != tape.rend(); ++it) {
    Node& node = *it;
    Tensor g = node.output.grad();
    if (!g.defined()) {  // this node does not lead to the root
      node = Node{};
      continue;
    }
    Tensor* in0 = node.inputs.empty() ? nullptr : &node.inputs[0];
    if (node.accumulate && in0 && in0->defined() && in0->requires_grad() && in0->grad().defined()) {
      Tensor cur = in0->grad();
      node.accumulate(g, cur);
      ++g_stats.accumulate_calls;
      g_stats.accumulated.push_back(node.op);
      release(node);
      continue;
    }
    ++g_stats.backward_calls;
    if (node.accumulate) g_stats.dense_fallbacks.push_back(node.op);
    std::vector<Tensor> grads = node.backward(g);
    FN_CHECK(grads.size() == node.inputs.size(), "backward of ", node.op, " returned ", grads.size(),
             " gradients for ", node.inputs.size(), " inputs");
    std::unordered_set<const Storage*> handed_out;
    for (size_t i = 0; i < grads.size(); ++i) {
      Tensor& in = node.inputs[i];
      Tensor gi = grads[i];
      if (!gi.defined() || !in.defined() || !in.requires_grad()) continue;
      FN_CHECK(gi.shape() == in.shape(), "backward of ", node.op, ": gradient ", gi.describe(), " for input ",
               in.describe());
      Tensor cur = in.grad();
      if (cur.defined()) {
        cur.add_(gi);
      } else {
        // A gradient that aliases the output's, or one already given to another input, must be copied:
        // accumulating into it later would change the other tensor too.
        const Storage* st = gi.impl()->storage.get();
        if (gi.same_storage(g) || handed_out.count(st)) gi = gi.clone();
        handed_out.insert(gi.impl()->storage.get());
        in.set_grad(gi);
      }
    }
    release(node);
  }
  if (!root.is_leaf()) root.impl()->grad.reset();
}

}  // namespace fn
