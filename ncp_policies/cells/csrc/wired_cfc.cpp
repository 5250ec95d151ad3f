// The wired CfC wavefront over a sequence for the CPU: the compiled mirror of WiredCfCCell.unroll
// (ncp_policies/cells/wired_cfc_cell.py; the combine is cfc_math.cfc_combine, see cfc_combine.h).
//
// The state h (B, N) holds L layers' neurons, layer l at columns [offsets[l], offsets[l+1]). In
// wave k = 0 .. T+L-2, layer l computes time step s = k - l from the previous wave's state:
//   src    = [h * keep_k | h]   with keep and a previous-layer matrix (several layers)
//          =  h * keep_k        with keep only,     = h   without keep
//   heads  = xp[:, min(k, T-1)] + src @ [w_own; w_prev]     (B, K*N), K head blocks of N columns
//   K = 3 (float timespan folded in): [ff1 | ff2 | gate];  K = 4 (per-sample timespans):
//          [ff1 | ff2 | time_a | time_b] with gate = time_b + time_a * ts_k
//   h      = ff1 * (1 - g) + g * ff2 ("default") or ff1 + g * ff2 ("no_gate"),
//            ff1, ff2 = tanh(.), g = sigmoid(gate)
// where keep_k, ts_k give layer l's neurons keep[:, s], ts[:, s] (1 when s is outside [0, T)).
// Layers l > k have not started in wave k and keep their initial state. Waves past T - 1 read
// xp's last step (only layer 0 reads the input; the other layers' columns of xp are their biases).
// The state of layer l after step s is that of wave s + l; the rest (layer 0 in the drain waves)
// is never read by a kept state and gets no gradient.
//
// The per-wave work is plain loops over raw buffers, matrix products included while they are
// small (tens of neurons, a few samples: a BLAS call's fixed cost would dominate; larger ones go
// to BLAS); the weight gradients, one product over all waves, go through ATen.
//
// Entry points (bound to Python at the bottom, used by ncp_policies/cells/wired_cfc_kernel.py):
//   forward   the wavefront; with save=True it also returns what backward needs
//   backward  its hand-written adjoint (gradients of xp, h0, w_own and w_prev)
#include <ATen/ATen.h>
#include <ATen/Dispatch.h>
#include <torch/csrc/utils/pybind.h>

#include "cfc_combine.h"
#include "fast_math.h"

#include <algorithm>
#include <optional>
#include <tuple>
#include <vector>

namespace {

// The sizes and optional inputs of one call.
struct Problem {
  int64_t n_b = 0, n_t = 0, n = 0, n_k = 0, n_layers = 0, n_waves = 0, n_src = 0;
  std::vector<int64_t> offsets;
  at::Tensor keep;   // (B, T) contiguous or undefined
  at::Tensor ts;     // (B, T) contiguous or undefined (then K = 3)
  at::Tensor w_cat;  // (n_src, K*N): [w_own; w_prev] or w_own
  bool has_prev = false;
  // Whether wave k's matrix product reads a buffer rather than the previous state itself.
  bool own_src() const { return keep.defined() || has_prev; }
};

void check(const at::Tensor& t, const char* name, const at::Tensor& like) {
  TORCH_CHECK_TYPE(t.device().is_cpu() && t.scalar_type() == like.scalar_type(), name,
                   " must be a CPU tensor of ", like.scalar_type(), ", got ", t.scalar_type(),
                   " on ", t.device());
}

at::Tensor optional_bt(const std::optional<at::Tensor>& t, const char* name, const at::Tensor& xp,
                       int64_t n_b, int64_t n_t) {
  if (!t.has_value() || !t->defined()) return at::Tensor();
  check(*t, name, xp);
  TORCH_CHECK_VALUE(t->sizes() == at::IntArrayRef({n_b, n_t}), name, " must be (B, T) = (", n_b,
                    ", ", n_t, "), got ", t->sizes());
  return t->contiguous();
}

Problem problem(const at::Tensor& xp, const at::Tensor& h0, const at::Tensor& w_own,
                const std::optional<at::Tensor>& w_prev, const std::optional<at::Tensor>& keep,
                const std::optional<at::Tensor>& ts, const std::vector<int64_t>& offsets) {
  TORCH_CHECK_TYPE(xp.scalar_type() == at::kFloat || xp.scalar_type() == at::kDouble,
                   "the wired CfC kernel supports float32 and float64, got ", xp.scalar_type());
  TORCH_CHECK_VALUE(xp.dim() == 3 && h0.dim() == 2 && xp.size(0) == h0.size(0),
                    "xp must be (B, T, K*N) and h0 (B, N); got ", xp.sizes(), " and ", h0.sizes());
  Problem p;
  p.n_b = xp.size(0);
  p.n_t = xp.size(1);
  p.n = h0.size(1);
  p.ts = optional_bt(ts, "ts", xp, p.n_b, p.n_t);
  p.keep = optional_bt(keep, "keep", xp, p.n_b, p.n_t);
  p.n_k = p.ts.defined() ? 4 : 3;
  p.n_layers = static_cast<int64_t>(offsets.size()) - 1;
  TORCH_CHECK_VALUE(p.n_t >= 1 && p.n_b >= 1, "xp must hold at least one sample and one step");
  TORCH_CHECK_VALUE(xp.size(2) == p.n_k * p.n, "xp must have K*N = ", p.n_k * p.n,
                    " columns (K = ", p.n_k, "), got ", xp.size(2));
  TORCH_CHECK_VALUE(p.n_layers >= 1 && offsets.front() == 0 && offsets.back() == p.n,
                    "offsets must run from 0 to N = ", p.n, ", got ", offsets);
  for (int64_t l = 0; l < p.n_layers; ++l) {
    TORCH_CHECK_VALUE(offsets[l] < offsets[l + 1], "offsets must increase, got ", offsets);
  }
  p.offsets = offsets;
  p.n_waves = p.n_t + p.n_layers - 1;
  const std::vector<int64_t> w_shape{p.n, p.n_k * p.n};
  check(h0, "h0", xp);
  check(w_own, "w_own", xp);
  TORCH_CHECK_VALUE(w_own.sizes() == w_shape, "w_own must be (N, K*N) = ", w_shape, ", got ",
                    w_own.sizes());
  p.has_prev = w_prev.has_value() && w_prev->defined();
  if (p.has_prev) {
    check(*w_prev, "w_prev", xp);
    TORCH_CHECK_VALUE(w_prev->sizes() == w_shape, "w_prev must be (N, K*N) = ", w_shape,
                      ", got ", w_prev->sizes());
    p.w_cat = at::cat({w_own, *w_prev}, 0);
  } else {
    p.w_cat = w_own;
  }
  p.n_src = p.has_prev ? 2 * p.n : p.n;
  return p;
}

// Layer l's value of a (B, T) per-step tensor in wave k for sample b: v[b, k - l], or 1 outside.
template <typename T>
inline T skewed(const T* v, const Problem& p, int64_t b, int64_t k, int64_t l) {
  const int64_t s = k - l;
  return (s >= 0 && s < p.n_t) ? v[b * p.n_t + s] : T(1);
}

// src (B, n_src) of wave k from the state h entering it (see the header comment).
template <typename T>
void fill_src(const Problem& p, const T* h, T* src, int64_t k) {
  const T* keep = p.keep.defined() ? p.keep.data_ptr<T>() : nullptr;
  for (int64_t b = 0; b < p.n_b; ++b) {
    const T* hb = h + b * p.n;
    T* sb = src + b * p.n_src;
    for (int64_t l = 0; l < p.n_layers; ++l) {
      const T f = keep != nullptr ? skewed(keep, p, b, k, l) : T(1);
      for (int64_t j = p.offsets[l]; j < p.offsets[l + 1]; ++j) sb[j] = hb[j] * f;
    }
    if (p.has_prev) std::copy(hb, hb + p.n, sb + p.n);
  }
}

// Products of at least this many multiply-adds go to BLAS; below, a BLAS call's fixed cost is more
// than a plain loop's work (tens of neurons, a few samples: the common case).
constexpr int64_t kBlasMin = 1 << 15;

// out (m, n) += a (m, k) @ b (k, n), all row-major and contiguous.
template <typename T>
void matmul_acc(const T* a, const T* b, T* out, int64_t m, int64_t k, int64_t n,
                const at::TensorOptions& opts) {
  if (m * k * n >= kBlasMin) {
    at::Tensor o = at::from_blob(out, {m, n}, opts);
    o.addmm_(at::from_blob(const_cast<T*>(a), {m, k}, opts),
             at::from_blob(const_cast<T*>(b), {k, n}, opts));
    return;
  }
  for (int64_t r = 0; r < m; ++r) {
    T* out_r = out + r * n;
    for (int64_t i = 0; i < k; ++i) {  // the loop over a row of b vectorises
      const T s = a[r * k + i];
      const T* row = b + i * n;
      for (int64_t j = 0; j < n; ++j) out_r[j] += s * row[j];
    }
  }
}

// One sample's activations in place: ff1, ff2 = tanh, g = sigmoid, a = [ff1 | ff2 | g] (3 n).
template <typename T>
inline void activate(T* a, int64_t n) {
  for (int64_t j = 0; j < 2 * n; ++j) a[j] = ncp_math::tanh(a[j]);
  for (int64_t j = 2 * n; j < 3 * n; ++j) a[j] = ncp_math::sigmoid(a[j]);
}

// Returns (states (B, T, N), waves (W, B, N), srcs (W, B, n_src), acts (W, B, 3N)); acts holds
// ff1, ff2, g after their activations; srcs is undefined unless save and keep or w_prev is given;
// waves is always the full wavefront, acts and srcs only with save (else one wave's buffer).
std::tuple<at::Tensor, at::Tensor, at::Tensor, at::Tensor> forward(
    const at::Tensor& xp, const at::Tensor& h0, const at::Tensor& w_own,
    const std::optional<at::Tensor>& w_prev, const std::optional<at::Tensor>& keep,
    const std::optional<at::Tensor>& ts, const std::vector<int64_t>& offsets, bool gated,
    bool save) {
  const Problem p = problem(xp, h0, w_own, w_prev, keep, ts, offsets);
  const int64_t n = p.n, n_w = p.n_waves, n_kn = p.n_k * n, n_b = p.n_b, n_t = p.n_t;
  const auto opts = xp.options();
  at::Tensor xp_c = xp.contiguous(), h0_c = h0.contiguous(), w_c = p.w_cat.contiguous();
  at::Tensor states = at::empty({n_b, n_t, n}, opts);
  at::Tensor waves = at::empty({n_w, n_b, n}, opts);
  at::Tensor acts = at::empty({save ? n_w : 1, n_b, 3 * n}, opts);
  at::Tensor srcs = p.own_src() ? at::empty({save ? n_w : 1, n_b, p.n_src}, opts) : at::Tensor();
  AT_DISPATCH_FLOATING_TYPES(xp.scalar_type(), "wired_cfc_forward", [&] {
    const scalar_t* x = xp_c.data_ptr<scalar_t>();
    const scalar_t* w = w_c.data_ptr<scalar_t>();
    const scalar_t* ts_v = p.ts.defined() ? p.ts.data_ptr<scalar_t>() : nullptr;
    scalar_t* out = states.data_ptr<scalar_t>();
    std::vector<scalar_t> heads4(p.n_k == 4 ? n_b * n_kn : 0);
    const scalar_t* h = h0_c.data_ptr<scalar_t>();
    for (int64_t k = 0; k < n_w; ++k) {
      const scalar_t* src = h;
      if (p.own_src()) {
        scalar_t* buf = srcs.data_ptr<scalar_t>() + (save ? k : 0) * n_b * p.n_src;
        fill_src<scalar_t>(p, h, buf, k);
        src = buf;
      }
      scalar_t* a = acts.data_ptr<scalar_t>() + (save ? k : 0) * n_b * 3 * n;
      scalar_t* h_new = waves.data_ptr<scalar_t>() + k * n_b * n;
      const int64_t t_in = std::min(k, n_t - 1);
      scalar_t* heads = p.n_k == 3 ? a : heads4.data();  // (B, K*N)
      for (int64_t b = 0; b < n_b; ++b) {
        const scalar_t* x_b = x + (b * n_t + t_in) * n_kn;
        std::copy(x_b, x_b + n_kn, heads + b * n_kn);
      }
      matmul_acc(src, w, heads, n_b, p.n_src, n_kn, opts);
      for (int64_t b = 0; b < n_b; ++b) {
        scalar_t* a_b = a + b * 3 * n;
        if (p.n_k == 4) {  // gate = time_b + time_a * ts into a's third block
          const scalar_t* h4 = heads + b * n_kn;
          std::copy(h4, h4 + 2 * n, a_b);
          for (int64_t l = 0; l < p.n_layers; ++l) {
            const scalar_t t_l = skewed(ts_v, p, b, k, l);
            for (int64_t j = p.offsets[l]; j < p.offsets[l + 1]; ++j) {
              a_b[2 * n + j] = h4[3 * n + j] + h4[2 * n + j] * t_l;
            }
          }
        }
        activate(a_b, n);
      }
      ncp_cfc::combine<scalar_t>(a, h_new, n_b, n, gated);
      if (k < p.n_layers - 1) {  // layers > k have not started: they keep their initial state
        const int64_t first = p.offsets[k + 1];
        for (int64_t b = 0; b < n_b; ++b) {
          std::copy(h + b * n + first, h + (b + 1) * n, h_new + b * n + first);
        }
      }
      for (int64_t l = 0; l < p.n_layers; ++l) {  // layer l's state after step k - l
        const int64_t s = k - l;
        if (s < 0 || s >= n_t) continue;
        for (int64_t b = 0; b < n_b; ++b) {
          std::copy(h_new + b * n + p.offsets[l], h_new + b * n + p.offsets[l + 1],
                    out + (b * n_t + s) * n + p.offsets[l]);
        }
      }
      h = h_new;
    }
  });
  return {states, waves, srcs, acts};
}

// Returns (d_xp (B, T, K*N), d_h0 (B, N), d_w_own (N, K*N), d_w_prev (N, K*N) or undefined).
std::tuple<at::Tensor, at::Tensor, at::Tensor, at::Tensor> backward(
    const at::Tensor& grad_states, const at::Tensor& xp, const at::Tensor& h0,
    const at::Tensor& w_own, const std::optional<at::Tensor>& w_prev,
    const std::optional<at::Tensor>& keep, const std::optional<at::Tensor>& ts,
    const std::vector<int64_t>& offsets, bool gated, const at::Tensor& waves,
    const std::optional<at::Tensor>& srcs, const at::Tensor& acts) {
  const Problem p = problem(xp, h0, w_own, w_prev, keep, ts, offsets);
  const int64_t n = p.n, n_w = p.n_waves, n_kn = p.n_k * n, n_t = p.n_t, n_b = p.n_b;
  TORCH_CHECK_VALUE(grad_states.sizes() == at::IntArrayRef({n_b, n_t, n}),
                    "grad_states must be (B, T, N)");
  TORCH_CHECK_VALUE(acts.sizes() == at::IntArrayRef({n_w, n_b, 3 * n}) &&
                        waves.sizes() == at::IntArrayRef({n_w, n_b, n}),
                    "acts and waves must come from forward(..., save=True)");
  TORCH_CHECK_VALUE(!p.own_src() || (srcs.has_value() && srcs->defined()),
                    "srcs must come from forward(..., save=True)");
  const auto opts = xp.options();
  at::Tensor grad = grad_states.contiguous();
  at::Tensor d_heads = at::empty({n_w, n_b, n_kn}, opts);
  at::Tensor w_t = p.w_cat.t().contiguous();  // (K*N, n_src)
  at::Tensor dh = at::zeros({n_b, n}, opts);  // gradient of the state leaving wave k
  AT_DISPATCH_FLOATING_TYPES(xp.scalar_type(), "wired_cfc_backward", [&] {
    const scalar_t* g = grad.data_ptr<scalar_t>();
    const scalar_t* keep_v = p.keep.defined() ? p.keep.data_ptr<scalar_t>() : nullptr;
    const scalar_t* ts_v = p.ts.defined() ? p.ts.data_ptr<scalar_t>() : nullptr;
    const scalar_t* wt = w_t.data_ptr<scalar_t>();
    scalar_t* d = dh.data_ptr<scalar_t>();
    std::vector<scalar_t> d3(p.n_k == 4 ? n_b * 3 * n : 0), d_src(n_b * p.n_src);
    for (int64_t k = n_w - 1; k >= 0; --k) {
      for (int64_t b = 0; b < n_b; ++b) {  // the states of wave k that are outputs
        for (int64_t l = 0; l < p.n_layers; ++l) {
          const int64_t s = k - l;
          if (s < 0 || s >= n_t) continue;
          const scalar_t* gs = g + (b * n_t + s) * n;
          for (int64_t j = p.offsets[l]; j < p.offsets[l + 1]; ++j) d[b * n + j] += gs[j];
        }
      }
      scalar_t* dk = d_heads.data_ptr<scalar_t>() + k * n_b * n_kn;
      const scalar_t* ak = acts.data_ptr<scalar_t>() + k * n_b * 3 * n;
      if (p.n_k == 3) {
        ncp_cfc::combine_backward<scalar_t>(d, ak, dk, n_b, n, gated);
      } else {  // d time_a = d gate * ts, d time_b = d gate
        ncp_cfc::combine_backward<scalar_t>(d, ak, d3.data(), n_b, n, gated);
        for (int64_t b = 0; b < n_b; ++b) {
          scalar_t* row = dk + b * n_kn;
          const scalar_t* r3 = d3.data() + b * 3 * n;
          std::copy(r3, r3 + 3 * n, row);
          std::copy(r3 + 2 * n, r3 + 3 * n, row + 3 * n);
          for (int64_t l = 0; l < p.n_layers; ++l) {
            const scalar_t t_l = skewed(ts_v, p, b, k, l);
            for (int64_t j = p.offsets[l]; j < p.offsets[l + 1]; ++j) row[2 * n + j] *= t_l;
          }
        }
      }
      const int64_t first = k < p.n_layers - 1 ? p.offsets[k + 1] : n;  // inactive: [first, N)
      for (int64_t b = 0; b < n_b && first < n; ++b) {
        for (int64_t blk = 0; blk < p.n_k; ++blk) {
          std::fill(dk + b * n_kn + blk * n + first, dk + b * n_kn + (blk + 1) * n, scalar_t(0));
        }
      }
      std::fill(d_src.begin(), d_src.end(), scalar_t(0));
      matmul_acc(dk, wt, d_src.data(), n_b, n_kn, p.n_src, opts);  // d_heads @ w^T
      for (int64_t b = 0; b < n_b; ++b) {
        const scalar_t* ds = d_src.data() + b * p.n_src;
        scalar_t* db = d + b * n;
        for (int64_t l = 0; l < p.n_layers; ++l) {
          const scalar_t f = keep_v != nullptr ? skewed(keep_v, p, b, k, l) : scalar_t(1);
          for (int64_t j = p.offsets[l]; j < p.offsets[l + 1]; ++j) {
            const scalar_t through = j >= first ? db[j] : scalar_t(0);  // an inactive layer's state
            db[j] = through + ds[j] * f + (p.has_prev ? ds[n + j] : scalar_t(0));
          }
        }
      }
    }
  });
  // Weight gradients: sum over waves of src_k^T @ d_heads_k.
  const int64_t rows = n_w * n_b;
  at::Tensor d_heads_2d = d_heads.view({rows, n_kn});
  at::Tensor d_w;
  if (p.own_src()) {
    d_w = at::mm(srcs->reshape({rows, p.n_src}).t(), d_heads_2d);
  } else {  // src_k = the state entering wave k: h0, then waves 0 .. W-2
    d_w = at::mm(h0.t(), d_heads[0]);
    if (n_w > 1) {
      d_w.addmm_(waves.narrow(0, 0, n_w - 1).reshape({rows - n_b, n}).t(),
                 d_heads.narrow(0, 1, n_w - 1).reshape({rows - n_b, n_kn}));
    }
  }
  // d_xp: wave k read step min(k, T - 1), so the drain waves add into the last step.
  at::Tensor d_xp = d_heads.narrow(0, 0, n_t);
  if (n_w > n_t) d_xp[n_t - 1].add_(d_heads.narrow(0, n_t, n_w - n_t).sum(0));
  at::Tensor d_w_own = p.has_prev ? d_w.narrow(0, 0, n) : d_w;
  at::Tensor d_w_prev = p.has_prev ? d_w.narrow(0, n, n) : at::Tensor();
  return {d_xp.transpose(0, 1), dh, d_w_own, d_w_prev};
}

}  // namespace

PYBIND11_MODULE(TORCH_EXTENSION_NAME, m) {
  m.doc() = "Wired CfC wavefront kernels (CPU); see ncp_policies/cells/wired_cfc_kernel.py";
  m.def("forward", &forward, "Wired CfC wavefront over a sequence (forward)");
  m.def("backward", &backward, "Wired CfC wavefront over a sequence (backward)");
}
