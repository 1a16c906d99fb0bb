using static TorchSharp.torch;
using QuantPeft.Quant.Torch;

namespace QuantPeft.Trainers.Model;

/// <summary>
/// Gemma 2's soft-capping, tanh(x / cap) · cap: values near 0 pass almost unchanged (slope 1) and every value stays
/// inside (−cap, cap). Computed in the input's dtype, as transformers does on bf16 logits.
/// </summary>
public static class Softcap
{
    /// <summary>tanh(<paramref name="x"/> / <paramref name="cap"/>) · <paramref name="cap"/>, a new tensor.</summary>
    /// <remarks>Out of place: tanh's backward reads its own output, which an in-place multiply would overwrite.</remarks>
    public static Tensor Apply(Tensor x, double cap)
    {
        using var scaled = x.Div(cap);
        using var squashed = scaled.tanh();
        return squashed.Mul(cap);
    }

    /// <summary>
    /// The derivative of the cap at the point whose capped value is <paramref name="capped"/>: 1 − (capped / cap)²,
    /// since d/dx [cap · tanh(x / cap)] = 1 − tanh²(x / cap).
    /// </summary>
    public static Tensor Derivative(Tensor capped, double cap) => capped.Div(cap).SquareInPlace().MulInPlace(-1.0).AddInPlace(1.0);
}
