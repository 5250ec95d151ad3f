// Dense CfC recurrence over a sequence for the CPU: the compiled mirror of CfCCell.step with a
// backbone of tanh layers and a timespan folded into the time gate (ncp_policies/cells/cfc_math.py).
//
// Per step t (the state h is (B, H), the backbone width U, L backbone layers):
//   h     = keep ? h * keep[:, t] : h
//   a_0   = tanh(xp[:, t] + h @ rec_wt)                     rec_wt (H, U); xp holds x's part + bias
//   a_l   = tanh(b_l + a_{l-1} @ wt_l)                       l = 1 .. L-1
//   heads = head_b + a_{L-1} @ head_wt                       head_wt (U, 3H) = [ff1 | ff2 | gate]
//   ff1, ff2 = tanh(heads[:, :H]), tanh(heads[:, H:2H]);  g = sigmoid(heads[:, 2H:])
//   h     = ff1 * (1 - g) + g * ff2   (mode "default")   or   ff1 + g * ff2   (mode "no_gate")
//
// Matrix products and the transcendental functions go through ATen (vectorised); the gate and
// the derivative loops are plain loops (the combine and its adjoint in cfc_combine.h, shared with
// the wired kernel wired_cfc.cpp). One call runs the whole sequence, so the per-op
// dispatch of Python and autograd is paid once, not 8 x T times.
//
// Entry points (bound to Python at the bottom):
//   forward   the recurrence; with save=True it also returns what backward needs
//   backward  the hand-written adjoint of forward (gradients of xp, h0 and every weight)
//   wired_step one step of a wired CfC cell (no backbone, layers in turn) without autograd
#include <ATen/ATen.h>
#include <ATen/Dispatch.h>
#include <torch/csrc/utils/pybind.h>

#include "cfc_combine.h"

#include <optional>
#include <tuple>
#include <vector>

namespace {

// Time-major buffers: [t] is a contiguous (B, ...) block.
struct Saved {
  at::Tensor h_in;   // (T, B, H) the state entering each step (after keep)
  at::Tensor acts;   // (L, T, B, U) backbone activations
  at::Tensor gates;  // (T, B, 3H) ff1, ff2, g after their activations
};

using ncp_cfc::combine;
using ncp_cfc::combine_backward;

template <typename T>
void tanh_backward(const T* grad, const T* act, T* out, int64_t n) {
  for (int64_t i = 0; i < n; ++i) out[i] = grad[i] * (T(1) - act[i] * act[i]);
}

void check(const at::Tensor& t, const char* name, const at::Tensor& like) {
  TORCH_CHECK_TYPE(t.device().is_cpu() && t.scalar_type() == like.scalar_type(), name,
                   " must be a CPU tensor of ", like.scalar_type(), ", got ", t.scalar_type(),
                   " on ", t.device());
}

// Returns (states (B, T, H), h_in, acts, gates); the last three are empty unless save.
std::tuple<at::Tensor, at::Tensor, at::Tensor, at::Tensor> forward(
    const at::Tensor& xp, const at::Tensor& h0, const at::Tensor& rec_wt,
    const std::vector<at::Tensor>& hidden_wt, const std::vector<at::Tensor>& hidden_b,
    const at::Tensor& head_wt, const at::Tensor& head_b, const std::optional<at::Tensor>& keep,
    bool gated, bool save) {
  TORCH_CHECK_VALUE(xp.dim() == 3 && h0.dim() == 2 && xp.size(0) == h0.size(0),
                    "xp must be (B, T, U) and h0 (B, H); got ", xp.sizes(), " and ", h0.sizes());
  const int64_t n_b = xp.size(0), n_t = xp.size(1), n_u = xp.size(2), n_h = h0.size(1);
  const int64_t n_l = static_cast<int64_t>(hidden_wt.size()) + 1;
  TORCH_CHECK_VALUE(hidden_b.size() == hidden_wt.size(), "one bias per hidden layer");
  TORCH_CHECK_VALUE(rec_wt.sizes() == at::IntArrayRef({n_h, n_u}), "rec_wt must be (H, U)");
  TORCH_CHECK_VALUE(head_wt.sizes() == at::IntArrayRef({n_u, 3 * n_h}), "head_wt must be (U, 3H)");
  for (const at::Tensor* t : {&h0, &rec_wt, &head_wt, &head_b}) check(*t, "every tensor", xp);
  TORCH_CHECK_TYPE(xp.scalar_type() == at::kFloat || xp.scalar_type() == at::kDouble,
                   "the CfC kernel supports float32 and float64, got ", xp.scalar_type());
  at::Tensor keep_t;
  if (keep.has_value() && keep->defined()) {
    check(*keep, "keep", xp);
    TORCH_CHECK_VALUE(keep->sizes() == at::IntArrayRef({n_b, n_t}), "keep must be (B, T)");
    keep_t = keep->t().contiguous().unsqueeze(-1);  // (T, B, 1)
  }
  const auto opts = xp.options();
  at::Tensor states = at::empty({n_t, n_b, n_h}, opts);
  at::Tensor h_in = save ? at::empty({n_t, n_b, n_h}, opts) : at::Tensor();
  at::Tensor acts = at::empty({save ? n_l : 1, save ? n_t : 1, n_b, n_u}, opts);
  at::Tensor gates = at::empty({save ? n_t : 1, n_b, 3 * n_h}, opts);
  at::Tensor xp_t = xp.transpose(0, 1);  // (T, B, U) view
  at::Tensor h = h0.contiguous();
  for (int64_t t = 0; t < n_t; ++t) {
    if (keep_t.defined()) h = h * keep_t[t];
    if (save) h_in[t].copy_(h);
    at::Tensor a = acts[0][save ? t : 0];
    at::addmm_out(a, xp_t[t], h, rec_wt);
    a.tanh_();
    for (int64_t l = 1; l < n_l; ++l) {
      at::Tensor next = acts[save ? l : 0][save ? t : 0];
      if (!save) next = at::empty({n_b, n_u}, opts);
      at::addmm_out(next, hidden_b[l - 1], a, hidden_wt[l - 1]);
      next.tanh_();
      a = next;
    }
    at::Tensor heads = gates[save ? t : 0];
    at::addmm_out(heads, head_b, a, head_wt);
    heads.narrow(1, 0, 2 * n_h).tanh_();
    heads.narrow(1, 2 * n_h, n_h).sigmoid_();
    at::Tensor h_new = states[t];
    AT_DISPATCH_FLOATING_TYPES(opts.dtype().toScalarType(), "cfc_combine", [&] {
      combine<scalar_t>(heads.data_ptr<scalar_t>(), h_new.data_ptr<scalar_t>(), n_b, n_h, gated);
    });
    h = h_new;
  }
  return {states.transpose(0, 1), h_in, acts, gates};
}

// Returns (d_xp (B, T, U), d_h0, d_rec_wt, d_head_wt, d_head_b, d_hidden_wt..., d_hidden_b...).
std::vector<at::Tensor> backward(const at::Tensor& grad_states, const at::Tensor& rec_wt,
                                 const std::vector<at::Tensor>& hidden_wt,
                                 const at::Tensor& head_wt, const std::optional<at::Tensor>& keep,
                                 const at::Tensor& h_in, const at::Tensor& acts,
                                 const at::Tensor& gates, bool gated) {
  const int64_t n_t = h_in.size(0), n_b = h_in.size(1), n_h = h_in.size(2);
  const int64_t n_l = acts.size(0), n_u = acts.size(3);
  const auto opts = h_in.options();
  at::Tensor grad = grad_states.transpose(0, 1).contiguous();  // (T, B, H)
  at::Tensor keep_t;
  if (keep.has_value() && keep->defined()) keep_t = keep->t().contiguous().unsqueeze(-1);
  at::Tensor d_heads = at::empty({n_t, n_b, 3 * n_h}, opts);
  at::Tensor d_z = at::empty({n_l, n_t, n_b, n_u}, opts);  // gradients of the pre-activations
  at::Tensor d_a = at::empty({n_b, n_u}, opts);
  at::Tensor head_w = head_wt.t(), rec_w = rec_wt.t();
  std::vector<at::Tensor> hidden_w;
  for (const at::Tensor& w : hidden_wt) hidden_w.push_back(w.t());
  at::Tensor dh = at::zeros({n_b, n_h}, opts);
  AT_DISPATCH_FLOATING_TYPES(opts.dtype().toScalarType(), "cfc_backward", [&] {
    for (int64_t t = n_t - 1; t >= 0; --t) {
      dh.add_(grad[t]);
      at::Tensor dheads = d_heads[t];
      combine_backward<scalar_t>(dh.data_ptr<scalar_t>(), gates[t].data_ptr<scalar_t>(),
                                 dheads.data_ptr<scalar_t>(), n_b, n_h, gated);
      at::mm_out(d_a, dheads, head_w);
      for (int64_t l = n_l - 1; l >= 0; --l) {
        at::Tensor dz = d_z[l][t];
        tanh_backward<scalar_t>(d_a.data_ptr<scalar_t>(), acts[l][t].data_ptr<scalar_t>(),
                                dz.data_ptr<scalar_t>(), n_b * n_u);
        if (l > 0) at::mm_out(d_a, dz, hidden_w[l - 1]);
      }
      at::mm_out(dh, d_z[0][t], rec_w);
      if (keep_t.defined()) dh.mul_(keep_t[t]);
    }
  });
  const int64_t rows = n_t * n_b;
  at::Tensor d_heads_2d = d_heads.view({rows, 3 * n_h});
  std::vector<at::Tensor> out;
  out.push_back(d_z[0].transpose(0, 1));                                           // d_xp
  out.push_back(dh);                                                               // d_h0
  out.push_back(at::mm(h_in.view({rows, n_h}).t(), d_z[0].view({rows, n_u})));    // d_rec_wt
  out.push_back(at::mm(acts[n_l - 1].view({rows, n_u}).t(), d_heads_2d));         // d_head_wt
  out.push_back(d_heads_2d.sum(0));                                                // d_head_b
  for (int64_t l = 1; l < n_l; ++l) {
    out.push_back(at::mm(acts[l - 1].view({rows, n_u}).t(), d_z[l].view({rows, n_u})));
  }
  for (int64_t l = 1; l < n_l; ++l) out.push_back(d_z[l].view({rows, n_u}).sum(0));
  return out;
}

// One step of a wired CfC cell without autograd: layer l reads the input (l = 0) or layer l-1's
// new state, and its own old state; heads = bias_l + src @ w_src_l + h_l @ w_rec_l, combined as
// above. h is (B, N) with the layers' neurons at [offsets[l], offsets[l+1]).
at::Tensor wired_step(const at::Tensor& x, const at::Tensor& h, const std::vector<at::Tensor>& w_src,
                      const std::vector<at::Tensor>& w_rec, const std::vector<at::Tensor>& bias,
                      const std::vector<int64_t>& offsets, bool gated) {
  const int64_t n_layers = static_cast<int64_t>(w_src.size()), n_b = x.size(0), n = h.size(1);
  TORCH_CHECK_VALUE(w_rec.size() == w_src.size() && bias.size() == w_src.size() &&
                        static_cast<int64_t>(offsets.size()) == n_layers + 1 && offsets.back() == n,
                    "one (w_src, w_rec, bias) per layer and offsets of length layers + 1 ending at N");
  check(h, "h", x);
  at::Tensor h_new = at::empty({n_b, n}, h.options());
  for (int64_t l = 0; l < n_layers; ++l) {
    const int64_t a = offsets[l], n_h = offsets[l + 1] - a;
    at::Tensor src = l == 0 ? x : h_new.narrow(1, offsets[l - 1], a - offsets[l - 1]);
    at::Tensor heads = at::addmm(bias[l], src, w_src[l]);
    heads.addmm_(h.narrow(1, a, n_h), w_rec[l]);
    heads.narrow(1, 0, 2 * n_h).tanh_();
    heads.narrow(1, 2 * n_h, n_h).sigmoid_();
    AT_DISPATCH_FLOATING_TYPES(h.scalar_type(), "cfc_wired_step", [&] {
      const scalar_t* hd = heads.data_ptr<scalar_t>();
      scalar_t* out = h_new.data_ptr<scalar_t>() + a;
      for (int64_t b = 0; b < n_b; ++b) {
        combine<scalar_t>(hd + b * 3 * n_h, out + b * n, 1, n_h, gated);
      }
    });
  }
  return h_new;
}

}  // namespace

PYBIND11_MODULE(TORCH_EXTENSION_NAME, m) {
  m.doc() = "Dense CfC recurrence kernels (CPU); see ncp_policies/cells/cfc_kernel.py";
  m.def("forward", &forward, "CfC recurrence over a sequence (forward)");
  m.def("backward", &backward, "CfC recurrence over a sequence (backward)");
  m.def("wired_step", &wired_step, "Wired CfC cell step, no autograd");
}
