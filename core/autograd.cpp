#include "core/autograd.h"

#include <unordered_map>

namespace fn {
namespace {
thread_local bool g_grad_enabled = true;
thread_local std::vector<Node> g_tape;
thread_local BackwardStats g_stats;
thread_local LeafGradHook g_leaf_grad_hook;
}  // namespace

LeafGradHook set_leaf_grad_hook(LeafGradHook hook) {
  LeafGradHook prev = std::move(g_leaf_grad_hook);
  g_leaf_grad_hook = std::move(hook);
  return prev;
}

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
  const std::shared_ptr<AutogradMeta>& out = output.autograd_meta();
  out->requires_grad = true;
  out->is_leaf = false;
  std::vector<GradSlot> slots(inputs.size());
  for (size_t i = 0; i < inputs.size(); ++i) {
    const Tensor& in = inputs[i];
    if (!in.defined() || !in.requires_grad()) continue;
    slots[i] = GradSlot{in.autograd_meta(), in.shape(), in.is_leaf() ? in : Tensor()};
  }
  g_tape.push_back(Node{op, std::move(slots), out, std::move(backward), std::move(accumulate)});
}

void clear_tape() { g_tape.clear(); }
size_t tape_size() { return g_tape.size(); }

namespace {
// Whether a gradient may be written in place: no other tensor shares its TensorImpl (another input handed
// the same gradient, as add's {g, g}) or its storage (a view of it, a closure that kept it).
bool exclusively_owned(const std::shared_ptr<TensorImpl>& g) { return g.use_count() == 1 && g->storage.use_count() == 1; }

// Adds gradient `gi` into the gradient of input `in`. The first gradient to arrive is taken as it is, with no
// copy: a gradient passed straight through (add's {g, g}, reshape's view) then costs nothing. Later ones add in
// place when that gradient is the input's alone, and out of place when it is shared, so accumulation never
// writes through a buffer another tensor still reads. A leaf's gradient outlives the backward, and the
// optimizers and clip_gradients change it in place, so a leaf always owns its own.
void accumulate_into(AutogradMeta& in, Tensor gi) {
  std::shared_ptr<TensorImpl>& cur = in.grad;
  if (!cur) {
    if (in.is_leaf && !exclusively_owned(gi.impl_ptr())) {
      gi = gi.clone();
      ++g_stats.grad_copies;
    }
    cur = gi.impl_ptr();
  } else if (exclusively_owned(cur)) {
    Tensor(cur).add_(gi);
  } else {
    Tensor sum = Tensor(cur).clone();
    sum.add_(gi);
    ++g_stats.grad_copies;
    cur = sum.impl_ptr();
  }
}

// After a node has run: its output's gradient (unless a leaf's) and its closures' saved tensors are freed.
void release(Node& node) {
  if (!node.output->is_leaf) node.output->grad.reset();
  node.backward = nullptr;
  node.accumulate = nullptr;
  node.inputs.clear();
  node.output.reset();
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
  // The caller's seed is shared, not copied: shared, it is never written in place (accumulate_into copies on
  // write). A leaf root owns its gradient, as every leaf does.
  root.autograd_meta()->grad = root.is_leaf() ? s.clone().impl_ptr() : s.impl_ptr();

  std::vector<Node> tape;
  tape.swap(g_tape);  // backward functions must not record; and the tape is consumed
  g_stats = BackwardStats{};
  NoGradGuard no_grad;
  // With a leaf-gradient hook: the leaves whose gradient is final once node i has run (those whose earliest
  // use is node i), reported after it.
  std::vector<std::vector<Tensor>> leaves_final_after;
  LeafGradHook hook = g_leaf_grad_hook;  // a copy: the hook may replace itself
  if (hook) {
    leaves_final_after.resize(tape.size());
    std::unordered_map<const TensorImpl*, size_t> first_use;
    for (size_t i = 0; i < tape.size(); ++i)
      for (const GradSlot& in : tape[i].inputs)
        if (in.leaf.defined() && first_use.emplace(in.leaf.impl(), i).second) leaves_final_after[i].push_back(in.leaf);
  }
  auto report_final = [&](std::vector<Node>::reverse_iterator it) {
    if (!hook) return;
    for (const Tensor& leaf : leaves_final_after[size_t(tape.rend() - it) - 1]) hook(leaf);
  };
  for (auto it = tape.rbegin(); it != tape.rend(); ++it) {
    Node& node = *it;
    Tensor g = node.output->grad ? Tensor(node.output->grad) : Tensor();
    if (!g.defined()) {  // this node does not lead to the root
      node = Node{};
      report_final(it);
      continue;
    }
    AutogradMeta* in0 = node.inputs.empty() ? nullptr : node.inputs[0].meta.get();
    if (node.accumulate && in0 && in0->requires_grad && in0->grad) {
      if (!exclusively_owned(in0->grad)) {  // copy on write: the sparse add must not reach another tensor
        in0->grad = Tensor(in0->grad).clone().impl_ptr();
        ++g_stats.grad_copies;
      }
      Tensor cur(in0->grad);
      node.accumulate(g, cur);
      ++g_stats.accumulate_calls;
      g_stats.accumulated.push_back(node.op);
      release(node);
      report_final(it);
      continue;
    }
    ++g_stats.backward_calls;
    if (node.accumulate) g_stats.dense_fallbacks.push_back(node.op);
    std::vector<Tensor> grads = node.backward(g);
    FN_CHECK(grads.size() == node.inputs.size(), "backward of ", node.op, " returned ", grads.size(),
             " gradients for ", node.inputs.size(), " inputs");
    // The output's gradient is used up: drop it before accumulating, so that a gradient the backward passed
    // straight through is held by its new owners only (and can be added into in place).
    g = Tensor();
    if (!node.output->is_leaf) node.output->grad.reset();
    for (size_t i = 0; i < grads.size(); ++i) {
      GradSlot& in = node.inputs[i];
      Tensor gi = std::move(grads[i]);
      if (!gi.defined() || !in.meta || !in.meta->requires_grad) continue;
      FN_CHECK(gi.shape() == in.shape, "backward of ", node.op, ": gradient ", gi.describe(), " for input ", i,
               " of shape ", shape_str(in.shape));
      accumulate_into(*in.meta, std::move(gi));
    }
    release(node);
    report_final(it);
  }
  if (!root.is_leaf()) root.autograd_meta()->grad.reset();
}

}  // namespace fn
