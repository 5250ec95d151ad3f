// The CfC combine and its adjoint, shared by the dense (cfc.cpp) and wired (wired_cfc.cpp) kernels:
// the compiled mirror of ncp_policies/cells/cfc_math.py's cfc_combine for K = 3 head blocks.
//
// The heads arrive after their activations, laid out per row as [ff1 | ff2 | g] (H columns each):
// ff1, ff2 = tanh(pre-activations), g = sigmoid(time gate pre-activation). Then
//   h = ff1 * (1 - g) + g * ff2   (mode "default", gated)
//   h = ff1 + g * ff2             (mode "no_gate")
//
// The extension's library name hashes every header of this folder (see csrc/__init__.py), so a
// change here rebuilds both kernels.
#pragma once

#include <cstdint>

namespace ncp_cfc {

// h (n_b, n_h) from the activated heads (n_b, 3 n_h).
template <typename T>
inline void combine(const T* heads, T* h, int64_t n_b, int64_t n_h, bool gated) {
  for (int64_t b = 0; b < n_b; ++b) {
    const T* ff1 = heads + b * 3 * n_h;
    const T* ff2 = ff1 + n_h;
    const T* g = ff2 + n_h;
    T* out = h + b * n_h;
    if (gated) {
      for (int64_t j = 0; j < n_h; ++j) out[j] = ff1[j] * (T(1) - g[j]) + g[j] * ff2[j];
    } else {
      for (int64_t j = 0; j < n_h; ++j) out[j] = ff1[j] + g[j] * ff2[j];
    }
  }
}

// The gradient of the three pre-activations (n_b, 3 n_h) from that of h (n_b, n_h), given the
// activated heads (n_b, 3 n_h) of the forward pass.
template <typename T>
inline void combine_backward(const T* dh, const T* heads, T* dheads, int64_t n_b, int64_t n_h,
                             bool gated) {
  for (int64_t b = 0; b < n_b; ++b) {
    const T* ff1 = heads + b * 3 * n_h;
    const T* ff2 = ff1 + n_h;
    const T* g = ff2 + n_h;
    const T* d = dh + b * n_h;
    T* d1 = dheads + b * 3 * n_h;
    T* d2 = d1 + n_h;
    T* dg = d2 + n_h;
    for (int64_t j = 0; j < n_h; ++j) {
      const T sig_grad = g[j] * (T(1) - g[j]);
      d1[j] = d[j] * (gated ? T(1) - g[j] : T(1)) * (T(1) - ff1[j] * ff1[j]);
      d2[j] = d[j] * g[j] * (T(1) - ff2[j] * ff2[j]);
      dg[j] = d[j] * (gated ? ff2[j] - ff1[j] : ff2[j]) * sig_grad;
    }
  }
}

}  // namespace ncp_cfc
