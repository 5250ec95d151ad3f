// LTC ODE unfold kernels for the CPU: the compiled mirror of ncp_policies/cells/ltc_kernel.py.
//
// The math is the LTC cell of ncps 1.0.1 (fused semi-implicit Euler solver), written over the
// synapse list of the wiring instead of dense (N, N) matrices: an NCP wiring is ~10% dense, and
// at its sizes the torch version is bound by op dispatch, so one call per sequence wins.
//
//   s_e   = sigmoid((v[pre_e] - mu_e) * sigma_e)                       for every synapse e
//   num_j = cm_j * v_j + num_const_j + sum_{e -> j} s_e * w_erev_e
//   den_j = den_const_j + sum_{e -> j} s_e * w_e
//   v_j  <- num_j / (den_j + epsilon)
//
// with num_const = gleak * vleak + num_s[t] and den_const = cm + gleak + den_s[t].
//
// Layout: samples run in groups of L lanes (L = kLanes, or 1 for batches of at most kSmallBatch).
// A group's buffers are [index][lane] (neuron-major or synapse-major, lane fastest), so every inner
// loop runs over the lanes of one neuron or synapse: it vectorises without gathers, and sums onto a
// neuron never conflict. Padding lanes of the last group repeat its first sample and get a zero
// output gradient, so they change nothing.
//
// Entry points (bound to Python at the bottom):
//   unfold_forward   the recurrence over T steps x ode_unfolds, optionally keeping every unfold's
//                    state (B, T, K, N) for the backward pass
//   unfold_backward  the hand-written adjoint of unfold_forward (sigmoids recomputed)
//   step_inference   input mapping + sensory synapses + unfolds + output mapping in one call
#include <ATen/Dispatch.h>
#include <ATen/Parallel.h>
#include <ATen/core/Tensor.h>
#include <ATen/ops/empty.h>
#include <ATen/ops/zeros.h>
#include <torch/csrc/utils/pybind.h>

#include "fast_math.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <optional>
#include <tuple>
#include <vector>

namespace {

// Samples per group: kLanes (one AVX2 register of float32) from kSmallBatch + 1 samples on; below,
// one sample per group, whose loops over synapses vectorise instead (a single rollout step).
constexpr int64_t kLanes = 8;
constexpr int64_t kSmallBatch = 4;

// ---------------------------------------------------------------------------------------------
// Elementwise math

using ncp_math::exp_vectorisable;  // fast_math.h, shared with wired_cfc.cpp
using ncp_math::sigmoid;

// torch.nn.functional.softplus with beta = 1, threshold = 20.
template <typename T>
inline T softplus(T x) {
  return x > T(20) ? x : std::log1p(std::exp(x));
}

// ---------------------------------------------------------------------------------------------
// Synapse lists

// The nonzero entries of a (pre, post) mask, grouped by post-synaptic neuron: the synapses onto
// neuron j are [start[j], start[j + 1]). An undefined mask means every (pre, post) pair.
struct Synapses {
  int64_t n_pre = 0;
  int64_t n_post = 0;
  std::vector<int32_t> pre;    // (E,) pre-synaptic neuron of each synapse
  std::vector<int32_t> post;   // (E,) post-synaptic neuron of each synapse
  std::vector<int64_t> flat;   // (E,) index pre * n_post + post into the dense matrix
  std::vector<int64_t> start;  // (n_post + 1,)

  int64_t size() const { return static_cast<int64_t>(pre.size()); }
};

template <typename T>
Synapses synapses_of(const at::Tensor& mask, int64_t n_pre, int64_t n_post) {
  Synapses syn;
  syn.n_pre = n_pre;
  syn.n_post = n_post;
  const T* m = mask.defined() ? mask.data_ptr<T>() : nullptr;
  for (int64_t j = 0; j < n_post; ++j) {
    syn.start.push_back(syn.size());
    for (int64_t i = 0; i < n_pre; ++i) {
      if (m == nullptr || m[i * n_post + j] != T(0)) {
        syn.pre.push_back(static_cast<int32_t>(i));
        syn.post.push_back(static_cast<int32_t>(j));
        syn.flat.push_back(i * n_post + j);
      }
    }
  }
  syn.start.push_back(syn.size());
  return syn;
}

// The recurrent synapses of one call as flat (E,) arrays; w and w_erev include the mask.
template <typename T>
struct Recurrent {
  const Synapses& syn;
  std::vector<T> w, w_erev, mu, sigma;
};

// Gathers w * mask, w_erev * mask, mu, sigma (dense (N, N), contiguous) onto the synapse list.
template <typename T>
Recurrent<T> gather_recurrent(const Synapses& syn, const T* w, const T* w_erev, const T* mu,
                              const T* sigma, const T* mask) {
  Recurrent<T> r{syn, {}, {}, {}, {}};
  for (int64_t f : syn.flat) {
    const T m = mask == nullptr ? T(1) : mask[f];
    r.w.push_back(w[f] * m);
    r.w_erev.push_back(w_erev[f] * m);
    r.mu.push_back(mu[f]);
    r.sigma.push_back(sigma[f]);
  }
  return r;
}

// ---------------------------------------------------------------------------------------------
// One unfold and its adjoint, for one group of kLanes samples. All buffers are [index][lane].

// Computes, per synapse, z = v[pre] - mu and s = sigmoid(z * sigma) (E x L), per neuron the
// denominator den (epsilon included) and the new state v_out (N x L). v and v_out do not alias.
template <typename T, int64_t L>
void unfold_lanes(const Recurrent<T>& r, const T* __restrict v, const T* __restrict cm,
                  const T* __restrict num_const, const T* __restrict den_const, T epsilon,
                  T* __restrict z, T* __restrict s, T* __restrict den, T* __restrict v_out) {
  const Synapses& syn = r.syn;
  const int64_t n_syn = syn.size();
  for (int64_t e = 0; e < n_syn; ++e) {
    const T* v_pre = v + syn.pre[e] * L;
    const T mu = r.mu[e];
    const T sigma = r.sigma[e];
    for (int64_t l = 0; l < L; ++l) {
      z[e * L + l] = v_pre[l] - mu;
      s[e * L + l] = sigmoid(z[e * L + l] * sigma);
    }
  }
  for (int64_t j = 0; j < syn.n_post; ++j) {
    T num_syn[L] = {};
    T den_syn[L] = {};
    for (int64_t e = syn.start[j]; e < syn.start[j + 1]; ++e) {
      const T w_erev = r.w_erev[e];
      const T w = r.w[e];
      for (int64_t l = 0; l < L; ++l) {
        num_syn[l] += s[e * L + l] * w_erev;
        den_syn[l] += s[e * L + l] * w;
      }
    }
    for (int64_t l = 0; l < L; ++l) {
      const int64_t jl = j * L + l;
      den[jl] = den_const[jl] + den_syn[l] + epsilon;
      v_out[jl] = (cm[jl] * v[jl] + num_const[jl] + num_syn[l]) / den[jl];
    }
  }
}

// Gradient accumulators of one thread, per lane ([index][lane]); summed over lanes at the end.
template <typename T, int64_t L>
struct Accumulators {
  std::vector<T> gleak, gleak_vleak;    // N x L
  std::vector<T> w, w_erev, mu, sigma;  // E x L
  Accumulators(int64_t n, int64_t n_syn)
      : gleak(n * L), gleak_vleak(n * L), w(n_syn * L), w_erev(n_syn * L), mu(n_syn * L),
        sigma(n_syn * L) {}
};

// The synapse part of adjoint_lanes (a separate function: restrict parameters let it vectorise).
template <typename T, int64_t L>
void synapse_adjoint(const Recurrent<T>& r, const T* __restrict z, const T* __restrict s,
                     const T* __restrict g_num, const T* __restrict g_den, T* __restrict acc_w,
                     T* __restrict acc_w_erev, T* __restrict acc_mu, T* __restrict acc_sigma,
                     T* __restrict g_in) {
  const Synapses& syn = r.syn;
  for (int64_t e = 0; e < syn.size(); ++e) {
    const T* gn = g_num + syn.post[e] * L;
    const T* gd = g_den + syn.post[e] * L;
    T* g_pre = g_in + syn.pre[e] * L;
    const T w = r.w[e];
    const T w_erev = r.w_erev[e];
    const T sigma = r.sigma[e];
    for (int64_t l = 0; l < L; ++l) {
      const int64_t el = e * L + l;
      const T s_e = s[el];
      acc_w_erev[el] += gn[l] * s_e;
      acc_w[el] += gd[l] * s_e;
      const T g_x = (gn[l] * w_erev + gd[l] * w) * s_e * (T(1) - s_e);  // d / d(z * sigma)
      acc_mu[el] -= g_x * sigma;
      acc_sigma[el] += g_x * z[el];
      g_pre[l] += g_x * sigma;
    }
  }
}

// Adjoint of unfold_lanes. Given g_v = dL/dv_out and that unfold's z, s, den, adds the
// gradients of the shared parameters to acc and of the step's inputs to g_cm, g_num_s, g_den_s,
// and writes g_in = dL/dv. g_num, g_den (N x L) are scratch.
template <typename T, int64_t L>
void adjoint_lanes(const Recurrent<T>& r, const T* __restrict v, const T* __restrict v_out,
                   const T* __restrict cm, const T* __restrict den, const T* __restrict z,
                   const T* __restrict s, const T* __restrict g_v, T* __restrict g_num,
                   T* __restrict g_den, Accumulators<T, L>& acc, T* __restrict g_cm,
                   T* __restrict g_num_s, T* __restrict g_den_s, T* __restrict g_in) {
  const int64_t n_l = r.syn.n_post * L;
  T* __restrict acc_gleak = acc.gleak.data();
  T* __restrict acc_gleak_vleak = acc.gleak_vleak.data();
  for (int64_t jl = 0; jl < n_l; ++jl) {  // v_out = numerator / denominator
    g_num[jl] = g_v[jl] / den[jl];
    g_den[jl] = -g_v[jl] * v_out[jl] / den[jl];
    g_cm[jl] += g_num[jl] * v[jl] + g_den[jl];
    g_num_s[jl] += g_num[jl];
    g_den_s[jl] += g_den[jl];
    acc_gleak[jl] += g_den[jl];
    acc_gleak_vleak[jl] += g_num[jl];
    g_in[jl] = g_num[jl] * cm[jl];
  }
  synapse_adjoint<T, L>(r, z, s, g_num, g_den, acc.w.data(), acc.w_erev.data(), acc.mu.data(),
                        acc.sigma.data(), g_in);
}

// ---------------------------------------------------------------------------------------------
// Lane groups and transposes between (sample, index) tensors and [index][lane] buffers

struct Group {
  int64_t first;  // first sample
  int64_t count;  // real samples, <= kLanes
  int64_t sample(int64_t l) const { return first + (l < count ? l : 0); }
};

template <typename T, int64_t L>
void to_lanes(const Group& g, const T* src, int64_t sample_stride, int64_t n, T* dst) {
  for (int64_t l = 0; l < L; ++l) {
    const T* row = src + g.sample(l) * sample_stride;
    for (int64_t j = 0; j < n; ++j) dst[j * L + l] = row[j];
  }
}

template <typename T, int64_t L>
void from_lanes(const Group& g, const T* src, int64_t n, T* dst, int64_t sample_stride) {
  for (int64_t l = 0; l < g.count; ++l) {
    T* row = dst + (g.first + l) * sample_stride;
    for (int64_t j = 0; j < n; ++j) row[j] = src[j * L + l];
  }
}

template <int64_t L, typename F>
void for_each_group(int64_t n_samples, const F& body) {
  const int64_t n_groups = (n_samples + L - 1) / L;
  at::parallel_for(0, n_groups, 1, [&](int64_t begin, int64_t end) {
    for (int64_t g = begin; g < end; ++g) {
      body(Group{g * L, std::min(L, n_samples - g * L)});
    }
  });
}

// ---------------------------------------------------------------------------------------------
// Argument checks

void check_float_cpu(const at::Tensor& t, const char* name, at::ScalarType dtype) {
  TORCH_CHECK_VALUE(t.device().is_cpu(), name, " must be on the CPU, got ", t.device(),
                    " (the C++ kernel is CPU only; the pure-torch path handles other devices)");
  TORCH_CHECK_TYPE(t.scalar_type() == dtype, name, " has dtype ", t.scalar_type(), " but ",
                   dtype, " was expected (all tensors must share one float dtype)");
}

void check_shape(const at::Tensor& t, const char* name, at::IntArrayRef shape) {
  TORCH_CHECK_VALUE(t.sizes() == shape, name, " must have shape ", shape, ", got ", t.sizes());
}

// The sequence arguments, checked and contiguous.
struct SequenceArgs {
  at::Tensor v0, cm_t, gleak, gleak_vleak, num_s, den_s, w, w_erev, mu, sigma, mask, keep;
  int64_t batch, steps, units, unfolds;
};

SequenceArgs sequence_args(const at::Tensor& v0, const at::Tensor& cm_t, const at::Tensor& gleak,
                           const at::Tensor& gleak_vleak, const at::Tensor& num_s,
                           const at::Tensor& den_s, const at::Tensor& w, const at::Tensor& w_erev,
                           const at::Tensor& mu, const at::Tensor& sigma,
                           const std::optional<at::Tensor>& mask, int64_t ode_unfolds,
                           const std::optional<at::Tensor>& keep) {
  TORCH_CHECK_VALUE(v0.dim() == 2, "v0 must have shape (B, N), got ", v0.sizes());
  TORCH_CHECK_VALUE(cm_t.dim() == 3, "cm_t must have shape (B, T, N), got ", cm_t.sizes());
  TORCH_CHECK_VALUE(ode_unfolds >= 1, "ode_unfolds must be >= 1, got ", ode_unfolds);
  const at::ScalarType dtype = v0.scalar_type();
  TORCH_CHECK_TYPE(dtype == at::kFloat || dtype == at::kDouble,
                   "the LTC kernel supports float32 and float64, got ", dtype);
  SequenceArgs a;
  a.batch = v0.size(0);
  a.units = v0.size(1);
  a.steps = cm_t.size(1);
  a.unfolds = ode_unfolds;
  const int64_t b = a.batch, t = a.steps, n = a.units;
  struct Item {
    const at::Tensor& in;
    at::Tensor& out;
    const char* name;
    std::vector<int64_t> shape;
  };
  Item items[] = {{v0, a.v0, "v0", {b, n}},
                  {cm_t, a.cm_t, "cm_t", {b, t, n}},
                  {gleak, a.gleak, "gleak", {n}},
                  {gleak_vleak, a.gleak_vleak, "gleak_vleak", {n}},
                  {num_s, a.num_s, "num_s", {b, t, n}},
                  {den_s, a.den_s, "den_s", {b, t, n}},
                  {w, a.w, "w", {n, n}},
                  {w_erev, a.w_erev, "w_erev", {n, n}},
                  {mu, a.mu, "mu", {n, n}},
                  {sigma, a.sigma, "sigma", {n, n}}};
  for (Item& item : items) {
    check_float_cpu(item.in, item.name, dtype);
    check_shape(item.in, item.name, item.shape);
    item.out = item.in.contiguous();
  }
  if (mask.has_value() && mask->defined()) {
    check_float_cpu(*mask, "synapse_mask", dtype);
    check_shape(*mask, "synapse_mask", {n, n});
    a.mask = mask->contiguous();
  }
  if (keep.has_value() && keep->defined()) {
    check_float_cpu(*keep, "keep", dtype);
    check_shape(*keep, "keep", {b, t});
    a.keep = keep->contiguous();
  }
  return a;
}

template <typename T>
const T* ptr_or_null(const at::Tensor& t) {
  return t.defined() ? t.data_ptr<T>() : nullptr;
}

// Per-step constants of one group: cm, num_const = gleak_vleak + num_s, den_const = cm + gleak +
// den_s (each N x L).
template <typename T, int64_t L>
void load_step(const SequenceArgs& a, const Group& g, int64_t t, T* cm, T* num_const,
               T* den_const) {
  const int64_t n = a.units;
  const T* gleak = a.gleak.data_ptr<T>();
  const T* gleak_vleak = a.gleak_vleak.data_ptr<T>();
  const int64_t row_stride = a.steps * n;
  const int64_t offset = t * n;
  to_lanes<T, L>(g, a.cm_t.data_ptr<T>() + offset, row_stride, n, cm);
  to_lanes<T, L>(g, a.num_s.data_ptr<T>() + offset, row_stride, n, num_const);
  to_lanes<T, L>(g, a.den_s.data_ptr<T>() + offset, row_stride, n, den_const);
  for (int64_t j = 0; j < n; ++j) {
    for (int64_t l = 0; l < L; ++l) {
      const int64_t jl = j * L + l;
      num_const[jl] = gleak_vleak[j] + num_const[jl];
      den_const[jl] = cm[jl] + gleak[j] + den_const[jl];
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Sequence forward

template <typename T, int64_t L>
void forward_impl(const SequenceArgs& a, T epsilon, at::Tensor& out, at::Tensor& states) {
  const int64_t n_t = a.steps, n = a.units, n_k = a.unfolds;
  const Synapses syn = synapses_of<T>(a.mask, n, n);
  const int64_t n_syn = syn.size();
  const Recurrent<T> rec =
      gather_recurrent(syn, a.w.data_ptr<T>(), a.w_erev.data_ptr<T>(), a.mu.data_ptr<T>(),
                       a.sigma.data_ptr<T>(), ptr_or_null<T>(a.mask));
  const T* keep = ptr_or_null<T>(a.keep);
  T* out_p = out.data_ptr<T>();
  T* states_p = states.defined() ? states.data_ptr<T>() : nullptr;

  for_each_group<L>(a.batch, [&](const Group& g) {
    std::vector<T> v(n * L), v_next(n * L), cm(n * L), num_const(n * L), den_const(n * L),
        den(n * L), z(n_syn * L), s(n_syn * L);
    to_lanes<T, L>(g, a.v0.data_ptr<T>(), n, n, v.data());
    for (int64_t t = 0; t < n_t; ++t) {
      load_step<T, L>(a, g, t, cm.data(), num_const.data(), den_const.data());
      if (keep != nullptr) {
        for (int64_t j = 0; j < n; ++j)
          for (int64_t l = 0; l < L; ++l) v[j * L + l] *= keep[g.sample(l) * n_t + t];
      }
      for (int64_t k = 0; k < n_k; ++k) {
        unfold_lanes<T, L>(rec, v.data(), cm.data(), num_const.data(), den_const.data(),
                           epsilon, z.data(), s.data(), den.data(), v_next.data());
        std::swap(v, v_next);
        if (states_p != nullptr) {
          from_lanes<T, L>(g, v.data(), n, states_p + (t * n_k + k) * n, n_t * n_k * n);
        }
      }
      from_lanes<T, L>(g, v.data(), n, out_p + t * n, n_t * n);
    }
  });
}

std::tuple<at::Tensor, at::Tensor> unfold_forward(
    const at::Tensor& v0, const at::Tensor& cm_t, const at::Tensor& gleak,
    const at::Tensor& gleak_vleak, const at::Tensor& num_s, const at::Tensor& den_s,
    const at::Tensor& w, const at::Tensor& w_erev, const at::Tensor& mu, const at::Tensor& sigma,
    const std::optional<at::Tensor>& mask, int64_t ode_unfolds, double epsilon,
    const std::optional<at::Tensor>& keep, bool store_states) {
  const SequenceArgs a = sequence_args(v0, cm_t, gleak, gleak_vleak, num_s, den_s, w, w_erev, mu,
                                       sigma, mask, ode_unfolds, keep);
  at::Tensor out = at::empty({a.batch, a.steps, a.units}, v0.options());
  at::Tensor states;
  if (store_states) states = at::empty({a.batch, a.steps, a.unfolds, a.units}, v0.options());
  AT_DISPATCH_FLOATING_TYPES(v0.scalar_type(), "ltc_unfold_forward", [&] {
    if (a.batch <= kSmallBatch) {
      forward_impl<scalar_t, 1>(a, static_cast<scalar_t>(epsilon), out, states);
    } else {
      forward_impl<scalar_t, kLanes>(a, static_cast<scalar_t>(epsilon), out, states);
    }
  });
  return {out, states};
}

// ---------------------------------------------------------------------------------------------
// Sequence backward

template <typename T, int64_t L>
std::vector<at::Tensor> backward_impl(const SequenceArgs& a, T epsilon, const at::Tensor& grad_out,
                                      const at::Tensor& states) {
  const int64_t n_b = a.batch, n_t = a.steps, n = a.units, n_k = a.unfolds;
  const T* mask = ptr_or_null<T>(a.mask);
  const Synapses syn = synapses_of<T>(a.mask, n, n);
  const int64_t n_syn = syn.size();
  const Recurrent<T> rec =
      gather_recurrent(syn, a.w.data_ptr<T>(), a.w_erev.data_ptr<T>(), a.mu.data_ptr<T>(),
                       a.sigma.data_ptr<T>(), mask);
  const T* v0 = a.v0.data_ptr<T>();
  const T* keep = ptr_or_null<T>(a.keep);
  const T* g_out = grad_out.data_ptr<T>();
  const T* st = states.data_ptr<T>();
  const int64_t st_stride = n_t * n_k * n;  // per sample in states

  const auto opts = a.v0.options();
  at::Tensor g_v0 = at::empty({n_b, n}, opts);
  at::Tensor g_cm = at::empty({n_b, n_t, n}, opts);
  at::Tensor g_num_s = at::empty({n_b, n_t, n}, opts);
  at::Tensor g_den_s = at::empty({n_b, n_t, n}, opts);
  at::Tensor g_keep = keep != nullptr ? at::empty({n_b, n_t}, opts) : at::Tensor();
  T* g_keep_p = g_keep.defined() ? g_keep.data_ptr<T>() : nullptr;

  std::vector<Accumulators<T, L>> per_thread(at::get_num_threads(), Accumulators<T, L>(n, n_syn));

  for_each_group<L>(n_b, [&](const Group& g) {
    Accumulators<T, L>& acc = per_thread[at::get_thread_num()];
    std::vector<T> g_v(n * L), g_in(n * L), v_prev(n * L), v_in(n * L), v_out(n * L),
        cm(n * L), num_const(n * L), den_const(n * L), den(n * L), scratch(n * L), g_num(n * L),
        g_den(n * L), g_cm_t(n * L), g_num_t(n * L), g_den_t(n * L), z(n_syn * L),
        s(n_syn * L);
    std::fill(g_v.begin(), g_v.end(), T(0));
    for (int64_t t = n_t - 1; t >= 0; --t) {
      load_step<T, L>(a, g, t, cm.data(), num_const.data(), den_const.data());
      for (int64_t l = 0; l < g.count; ++l) {  // padding lanes get no output gradient
        const T* row = g_out + ((g.first + l) * n_t + t) * n;
        for (int64_t j = 0; j < n; ++j) g_v[j * L + l] += row[j];
      }
      // State entering step t (v_prev), and after the reset (the input of unfold 0).
      if (t > 0) {
        to_lanes<T, L>(g, st + ((t - 1) * n_k + n_k - 1) * n, st_stride, n, v_prev.data());
      } else {
        to_lanes<T, L>(g, v0, n, n, v_prev.data());
      }
      T keep_t[L];
      for (int64_t l = 0; l < L; ++l) {
        keep_t[l] = keep != nullptr ? keep[g.sample(l) * n_t + t] : T(1);
      }
      std::fill(g_cm_t.begin(), g_cm_t.end(), T(0));
      std::fill(g_num_t.begin(), g_num_t.end(), T(0));
      std::fill(g_den_t.begin(), g_den_t.end(), T(0));

      for (int64_t k = n_k - 1; k >= 0; --k) {
        if (k > 0) {
          to_lanes<T, L>(g, st + (t * n_k + k - 1) * n, st_stride, n, v_in.data());
        } else {
          for (int64_t j = 0; j < n; ++j)
            for (int64_t l = 0; l < L; ++l) v_in[j * L + l] = v_prev[j * L + l] * keep_t[l];
        }
        to_lanes<T, L>(g, st + (t * n_k + k) * n, st_stride, n, v_out.data());
        // Recompute this unfold's synapse activations and denominators, then its adjoint.
        unfold_lanes<T, L>(rec, v_in.data(), cm.data(), num_const.data(), den_const.data(),
                           epsilon, z.data(), s.data(), den.data(), scratch.data());
        adjoint_lanes<T, L>(rec, v_in.data(), v_out.data(), cm.data(), den.data(), z.data(),
                            s.data(), g_v.data(), g_num.data(), g_den.data(), acc,
                            g_cm_t.data(), g_num_t.data(), g_den_t.data(), g_in.data());
        std::swap(g_v, g_in);
      }
      from_lanes<T, L>(g, g_cm_t.data(), n, g_cm.data_ptr<T>() + t * n, n_t * n);
      from_lanes<T, L>(g, g_num_t.data(), n, g_num_s.data_ptr<T>() + t * n, n_t * n);
      from_lanes<T, L>(g, g_den_t.data(), n, g_den_s.data_ptr<T>() + t * n, n_t * n);
      // g_v is now the gradient with respect to keep_t * v_prev.
      if (keep != nullptr) {
        for (int64_t l = 0; l < g.count; ++l) {
          T dot = 0;
          for (int64_t j = 0; j < n; ++j) dot += g_v[j * L + l] * v_prev[j * L + l];
          g_keep_p[(g.first + l) * n_t + t] = dot;
        }
        for (int64_t j = 0; j < n; ++j)
          for (int64_t l = 0; l < L; ++l) g_v[j * L + l] *= keep_t[l];
      }
    }
    from_lanes<T, L>(g, g_v.data(), n, g_v0.data_ptr<T>(), n);
  });

  // Sum the accumulators over threads and lanes; scatter synapse gradients to dense (N, N).
  at::Tensor g_gleak = at::zeros({n}, opts);
  at::Tensor g_gleak_vleak = at::zeros({n}, opts);
  at::Tensor g_w = at::zeros({n, n}, opts);
  at::Tensor g_w_erev = at::zeros({n, n}, opts);
  at::Tensor g_mu = at::zeros({n, n}, opts);
  at::Tensor g_sigma = at::zeros({n, n}, opts);
  T* gg = g_gleak.data_ptr<T>();
  T* ggv = g_gleak_vleak.data_ptr<T>();
  T* gw = g_w.data_ptr<T>();
  T* gwe = g_w_erev.data_ptr<T>();
  T* gmu = g_mu.data_ptr<T>();
  T* gsig = g_sigma.data_ptr<T>();
  for (const Accumulators<T, L>& acc : per_thread) {
    for (int64_t j = 0; j < n; ++j) {
      for (int64_t l = 0; l < L; ++l) {
        gg[j] += acc.gleak[j * L + l];
        ggv[j] += acc.gleak_vleak[j * L + l];
      }
    }
    for (int64_t e = 0; e < n_syn; ++e) {
      const int64_t f = syn.flat[e];
      // w and w_erev entered as w * mask: chain rule through the mask.
      const T m = mask == nullptr ? T(1) : mask[f];
      for (int64_t l = 0; l < L; ++l) {
        gw[f] += acc.w[e * L + l] * m;
        gwe[f] += acc.w_erev[e * L + l] * m;
        gmu[f] += acc.mu[e * L + l];
        gsig[f] += acc.sigma[e * L + l];
      }
    }
  }
  return {g_v0, g_cm, g_gleak, g_gleak_vleak, g_num_s, g_den_s,
          g_w,  g_w_erev, g_mu, g_sigma, g_keep};
}

std::vector<at::Tensor> unfold_backward(
    const at::Tensor& grad_out, const at::Tensor& v0, const at::Tensor& cm_t,
    const at::Tensor& gleak, const at::Tensor& gleak_vleak, const at::Tensor& num_s,
    const at::Tensor& den_s, const at::Tensor& w, const at::Tensor& w_erev, const at::Tensor& mu,
    const at::Tensor& sigma, const std::optional<at::Tensor>& mask, int64_t ode_unfolds,
    double epsilon, const std::optional<at::Tensor>& keep, const at::Tensor& states) {
  const SequenceArgs a = sequence_args(v0, cm_t, gleak, gleak_vleak, num_s, den_s, w, w_erev, mu,
                                       sigma, mask, ode_unfolds, keep);
  check_float_cpu(grad_out, "grad_out", v0.scalar_type());
  check_shape(grad_out, "grad_out", {a.batch, a.steps, a.units});
  check_float_cpu(states, "states", v0.scalar_type());
  check_shape(states, "states", {a.batch, a.steps, a.unfolds, a.units});
  const at::Tensor g = grad_out.contiguous();
  const at::Tensor st = states.contiguous();
  std::vector<at::Tensor> grads;
  AT_DISPATCH_FLOATING_TYPES(v0.scalar_type(), "ltc_unfold_backward", [&] {
    grads = a.batch <= kSmallBatch
                ? backward_impl<scalar_t, 1>(a, static_cast<scalar_t>(epsilon), g, st)
                : backward_impl<scalar_t, kLanes>(a, static_cast<scalar_t>(epsilon), g, st);
  });
  return grads;
}

// ---------------------------------------------------------------------------------------------
// Fused single-step inference

// The raw parameters of an LTC cell (contiguous), in the order of step_inference's arguments.
struct CellParams {
  at::Tensor gleak, vleak, cm, sigma, mu, w, erev, sensory_sigma, sensory_mu, sensory_w,
      sensory_erev, sparsity_mask, sensory_sparsity_mask;
  at::Tensor input_w, input_b, output_w, output_b;  // undefined when the mapping does not use them
};

template <typename T, int64_t L>
void step_impl(const at::Tensor& x, const at::Tensor& v_in, const at::Tensor& timespan_t,
               double timespan, const CellParams& p, bool implicit, int64_t n_k, T epsilon,
               at::Tensor& out, at::Tensor& v_new) {
  const int64_t n_b = x.size(0), n_f = x.size(1), n = v_in.size(1), n_o = out.size(1);
  auto pos = [implicit](T value) { return implicit ? softplus(value) : value; };

  // Recurrent synapses: w = pos(w_raw) * mask, w_erev = w * erev.
  const Synapses syn = synapses_of<T>(p.sparsity_mask, n, n);
  Recurrent<T> rec{syn, {}, {}, {}, {}};
  {
    const T* w_raw = p.w.data_ptr<T>();
    const T* erev = p.erev.data_ptr<T>();
    const T* mask = p.sparsity_mask.data_ptr<T>();
    const T* mu = p.mu.data_ptr<T>();
    const T* sigma = p.sigma.data_ptr<T>();
    for (int64_t f : syn.flat) {
      rec.w.push_back(pos(w_raw[f]) * mask[f]);
      rec.w_erev.push_back(rec.w.back() * erev[f]);
      rec.mu.push_back(mu[f]);
      rec.sigma.push_back(sigma[f]);
    }
  }
  // Sensory synapses: activation weight pos(sensory_w) * mask, times sensory_erev for the
  // numerator.
  const Synapses s_syn = synapses_of<T>(p.sensory_sparsity_mask, n_f, n);
  std::vector<T> s_w, s_w_erev, s_mu, s_sigma;
  {
    const T* sw_raw = p.sensory_w.data_ptr<T>();
    const T* s_erev = p.sensory_erev.data_ptr<T>();
    const T* s_mask = p.sensory_sparsity_mask.data_ptr<T>();
    const T* mu = p.sensory_mu.data_ptr<T>();
    const T* sigma = p.sensory_sigma.data_ptr<T>();
    for (int64_t f : s_syn.flat) {
      s_w.push_back(pos(sw_raw[f]) * s_mask[f]);
      s_w_erev.push_back(s_w.back() * s_erev[f]);
      s_mu.push_back(mu[f]);
      s_sigma.push_back(sigma[f]);
    }
  }
  std::vector<T> gleak(n), gleak_vleak(n), cm_pos(n);
  {
    const T* gleak_raw = p.gleak.data_ptr<T>();
    const T* vleak = p.vleak.data_ptr<T>();
    const T* cm_raw = p.cm.data_ptr<T>();
    for (int64_t j = 0; j < n; ++j) {
      gleak[j] = pos(gleak_raw[j]);
      gleak_vleak[j] = gleak[j] * vleak[j];
      cm_pos[j] = pos(cm_raw[j]);
    }
  }
  const T* iw = ptr_or_null<T>(p.input_w);
  const T* ib = ptr_or_null<T>(p.input_b);
  const T* ow = ptr_or_null<T>(p.output_w);
  const T* ob = ptr_or_null<T>(p.output_b);
  const T* ts = ptr_or_null<T>(timespan_t);
  const bool ts_per_sample = ts != nullptr && timespan_t.numel() > 1;
  const T* xp = x.data_ptr<T>();

  for_each_group<L>(n_b, [&](const Group& g) {
    std::vector<T> x_m(n_f * L), v(n * L), v_next(n * L), cm(n * L), num_const(n * L),
        den_const(n * L), den(n * L), z(syn.size() * L), s(syn.size() * L);
    T dt[L];
    for (int64_t l = 0; l < L; ++l) {
      const int64_t b = g.sample(l);
      for (int64_t i = 0; i < n_f; ++i) {
        T xi = xp[b * n_f + i];
        if (iw != nullptr) xi = xi * iw[i];
        if (ib != nullptr) xi = xi + ib[i];
        x_m[i * L + l] = xi;
      }
      dt[l] = (ts == nullptr ? static_cast<T>(timespan) : ts[ts_per_sample ? b : 0]) /
              static_cast<T>(n_k);
    }
    for (int64_t j = 0; j < n; ++j) {
      T num_s[L] = {};
      T den_s[L] = {};
      for (int64_t e = s_syn.start[j]; e < s_syn.start[j + 1]; ++e) {
        const T* x_pre = x_m.data() + s_syn.pre[e] * L;
        for (int64_t l = 0; l < L; ++l) {
          const T act = sigmoid((x_pre[l] - s_mu[e]) * s_sigma[e]);
          num_s[l] += act * s_w_erev[e];
          den_s[l] += act * s_w[e];
        }
      }
      for (int64_t l = 0; l < L; ++l) {
        const int64_t jl = j * L + l;
        cm[jl] = cm_pos[j] / dt[l];
        num_const[jl] = gleak_vleak[j] + num_s[l];
        den_const[jl] = cm[jl] + gleak[j] + den_s[l];
      }
    }
    to_lanes<T, L>(g, v_in.data_ptr<T>(), n, n, v.data());
    for (int64_t k = 0; k < n_k; ++k) {
      unfold_lanes<T, L>(rec, v.data(), cm.data(), num_const.data(), den_const.data(), epsilon,
                         z.data(), s.data(), den.data(), v_next.data());
      std::swap(v, v_next);
    }
    from_lanes<T, L>(g, v.data(), n, v_new.data_ptr<T>(), n);
    for (int64_t l = 0; l < g.count; ++l) {
      T* row = out.data_ptr<T>() + (g.first + l) * n_o;
      for (int64_t o = 0; o < n_o; ++o) {
        T y = v[o * L + l];
        if (ow != nullptr) y = y * ow[o];
        if (ob != nullptr) y = y + ob[o];
        row[o] = y;
      }
    }
  });
}

std::tuple<at::Tensor, at::Tensor> step_inference(
    const at::Tensor& x, const at::Tensor& v, const std::optional<at::Tensor>& timespan_tensor,
    double timespan, const at::Tensor& gleak, const at::Tensor& vleak, const at::Tensor& cm,
    const at::Tensor& sigma, const at::Tensor& mu, const at::Tensor& w, const at::Tensor& erev,
    const at::Tensor& sensory_sigma, const at::Tensor& sensory_mu, const at::Tensor& sensory_w,
    const at::Tensor& sensory_erev, const at::Tensor& sparsity_mask,
    const at::Tensor& sensory_sparsity_mask, const std::optional<at::Tensor>& input_w,
    const std::optional<at::Tensor>& input_b, const std::optional<at::Tensor>& output_w,
    const std::optional<at::Tensor>& output_b, int64_t motor_size,
    bool implicit_param_constraints, int64_t ode_unfolds, double epsilon) {
  TORCH_CHECK_VALUE(x.dim() == 2, "x must have shape (B, F), got ", x.sizes());
  TORCH_CHECK_VALUE(v.dim() == 2 && v.size(0) == x.size(0),
                    "v must have shape (B, N) with the B of x ", x.sizes(), ", got ", v.sizes());
  TORCH_CHECK_VALUE(ode_unfolds >= 1, "ode_unfolds must be >= 1, got ", ode_unfolds);
  const int64_t n_b = x.size(0), n_f = x.size(1), n = v.size(1);
  TORCH_CHECK_VALUE(motor_size >= 1 && motor_size <= n, "motor_size must be in [1, ", n,
                    "], got ", motor_size);
  const at::ScalarType dtype = x.scalar_type();
  TORCH_CHECK_TYPE(dtype == at::kFloat || dtype == at::kDouble,
                   "the LTC kernel supports float32 and float64, got ", dtype);
  CellParams p;
  struct Item {
    const at::Tensor& in;
    at::Tensor& out;
    const char* name;
    std::vector<int64_t> shape;
  };
  at::Tensor x_c, v_c;
  Item items[] = {{x, x_c, "x", {n_b, n_f}},
                  {v, v_c, "v", {n_b, n}},
                  {gleak, p.gleak, "gleak", {n}},
                  {vleak, p.vleak, "vleak", {n}},
                  {cm, p.cm, "cm", {n}},
                  {sigma, p.sigma, "sigma", {n, n}},
                  {mu, p.mu, "mu", {n, n}},
                  {w, p.w, "w", {n, n}},
                  {erev, p.erev, "erev", {n, n}},
                  {sensory_sigma, p.sensory_sigma, "sensory_sigma", {n_f, n}},
                  {sensory_mu, p.sensory_mu, "sensory_mu", {n_f, n}},
                  {sensory_w, p.sensory_w, "sensory_w", {n_f, n}},
                  {sensory_erev, p.sensory_erev, "sensory_erev", {n_f, n}},
                  {sparsity_mask, p.sparsity_mask, "sparsity_mask", {n, n}},
                  {sensory_sparsity_mask, p.sensory_sparsity_mask, "sensory_sparsity_mask",
                   {n_f, n}}};
  for (Item& item : items) {
    check_float_cpu(item.in, item.name, dtype);
    check_shape(item.in, item.name, item.shape);
    item.out = item.in.contiguous();
  }
  struct Optional {
    const std::optional<at::Tensor>& in;
    at::Tensor& out;
    const char* name;
    int64_t size;
  };
  Optional mappings[] = {{input_w, p.input_w, "input_w", n_f},
                         {input_b, p.input_b, "input_b", n_f},
                         {output_w, p.output_w, "output_w", motor_size},
                         {output_b, p.output_b, "output_b", motor_size}};
  for (Optional& item : mappings) {
    if (item.in.has_value() && item.in->defined()) {
      check_float_cpu(*item.in, item.name, dtype);
      check_shape(*item.in, item.name, {item.size});
      item.out = item.in->contiguous();
    }
  }
  at::Tensor ts_c;
  if (timespan_tensor.has_value() && timespan_tensor->defined()) {
    check_float_cpu(*timespan_tensor, "timespan", dtype);
    TORCH_CHECK_VALUE(timespan_tensor->numel() == 1 || timespan_tensor->numel() == n_b,
                      "timespan must be a float or a tensor of B = ", n_b,
                      " elements (or one), got shape ", timespan_tensor->sizes());
    ts_c = timespan_tensor->contiguous();
  }

  at::Tensor out = at::empty({n_b, motor_size}, x.options());
  at::Tensor v_new = at::empty({n_b, n}, x.options());
  AT_DISPATCH_FLOATING_TYPES(dtype, "ltc_step_inference", [&] {
    const scalar_t eps = static_cast<scalar_t>(epsilon);
    if (n_b <= kSmallBatch) {
      step_impl<scalar_t, 1>(x_c, v_c, ts_c, timespan, p, implicit_param_constraints, ode_unfolds,
                             eps, out, v_new);
    } else {
      step_impl<scalar_t, kLanes>(x_c, v_c, ts_c, timespan, p, implicit_param_constraints,
                                  ode_unfolds, eps, out, v_new);
    }
  });
  return {out, v_new};
}

}  // namespace

PYBIND11_MODULE(TORCH_EXTENSION_NAME, m) {
  m.doc() = "LTC ODE unfold kernels (CPU); see ncp_policies/cells/ltc_kernel.py";
  m.def("unfold_forward", &unfold_forward, "LTC unfold over a sequence (forward)");
  m.def("unfold_backward", &unfold_backward, "LTC unfold over a sequence (backward)");
  m.def("step_inference", &step_inference, "Fused LTC cell step, no autograd");
}
