using QuantPeft.Formats.HuggingFace;
using TorchSharp;
using static TorchSharp.torch;
using QuantPeft.Quant.Torch;

namespace QuantPeft.Trainers.Model;

/// <summary>
/// Rotary position embeddings in Hugging Face's "rotate half" layout: dimension i of a head is paired
/// with dimension i + D/2 (not with its neighbour, as in the original Meta code), and both halves
/// share the frequency inv_freq[i]. The angle table is computed in float32, as HF does, and only the
/// final cos/sin are cast to the compute dtype. With <c>partial_rotary_factor</c> (Phi-4-mini) only the first
/// <see cref="ModelSpec.RotaryDim"/> dimensions of a head rotate, paired within that slice; the rest pass through.
/// </summary>
public static class RotaryEmbedding
{
    /// <summary>
    /// The D/2 inverse frequencies θ^(−2i/D), adjusted by <c>rope_scaling</c>: <c>linear</c> divides all of
    /// them by the factor; <c>llama3</c> divides low frequencies by the factor, keeps high ones, and blends
    /// linearly in between (transformers' <c>_compute_llama3_parameters</c>); <c>dynamic</c> equals the
    /// default for sequences within <c>max_position_embeddings</c>, the only ones this model accepts; <c>longrope</c> divides
    /// frequency i by <c>short_factor[i]</c>, or by <c>long_factor[i]</c> when <paramref name="longContext"/> (a sequence longer than
    /// <c>original_max_position_embeddings</c>, as transformers switches). The frequencies cover the rotary dimensions only.
    /// </summary>
    /// <exception cref="ModelException">An unsupported scaling type or an odd rotary dimension.</exception>
    public static float[] InverseFrequencies(ModelSpec spec, bool longContext = false)
    {
        int dim = spec.RotaryDim;
        if (dim % 2 != 0 || dim == 0)
            throw new ModelException($"head_dim: rotary embeddings need an even, non-zero rotary dimension, found {dim} (head_dim {spec.HeadDim} × partial_rotary_factor {spec.PartialRotaryFactor})");
        var inv = new double[dim / 2];
        for (int i = 0; i < inv.Length; i++)
            inv[i] = 1.0 / Math.Pow(spec.RopeTheta, 2.0 * i / dim);

        var scaling = spec.RopeScaling;
        switch (scaling?.Type)
        {
            case null or "default" or "dynamic":
                break;
            case "linear":
                for (int i = 0; i < inv.Length; i++) inv[i] /= scaling.Factor;
                break;
            case "llama3":
                ApplyLlama3(inv, scaling);
                break;
            case "longrope":
                var divisors = (longContext ? scaling.LongFactor : scaling.ShortFactor)
                    ?? throw new ModelException("rope_scaling: longrope needs short_factor and long_factor");
                if (divisors.Count != inv.Length)
                    throw new ModelException($"rope_scaling: longrope has {divisors.Count} factors for {inv.Length} rotary frequencies");
                // transformers computes 1 / (factor · base^(2i/D)) in float32; in double and rounded once here, as for the other types.
                for (int i = 0; i < inv.Length; i++) inv[i] /= divisors[i];
                break;
            default:
                throw new ModelException(
                    $"rope_scaling.rope_type: expected one of default, linear, dynamic, llama3, longrope; found '{scaling.Type}'");
        }
        return inv.Select(v => (float)v).ToArray();
    }

    private static void ApplyLlama3(double[] inv, RopeScaling s)
    {
        if (s.HighFreqFactor <= s.LowFreqFactor)
            throw new ModelException(
                $"rope_scaling: high_freq_factor ({s.HighFreqFactor}) must exceed low_freq_factor ({s.LowFreqFactor})");
        double oldContext = s.OriginalMaxPositionEmbeddings;
        double lowFreqWavelen = oldContext / s.LowFreqFactor;   // longer waves than this get divided by factor
        double highFreqWavelen = oldContext / s.HighFreqFactor; // shorter waves than this stay as they are
        for (int i = 0; i < inv.Length; i++)
        {
            double wavelen = 2 * Math.PI / inv[i];
            if (wavelen < highFreqWavelen) continue;
            if (wavelen > lowFreqWavelen) { inv[i] /= s.Factor; continue; }
            double smooth = (oldContext / wavelen - s.LowFreqFactor) / (s.HighFreqFactor - s.LowFreqFactor);
            inv[i] = (1 - smooth) * inv[i] / s.Factor + smooth * inv[i];
        }
    }

    /// <summary>
    /// cos and sin of position·inv_freq for positions 0…seqLen−1, each (seqLen, R) with the R/2 angles
    /// repeated in both halves (R the rotary dimension), computed in float32, multiplied by <paramref name="scale"/>
    /// (longrope's attention factor, <see cref="RopeScaling.CosSinScale"/>) and returned in <paramref name="dtype"/>.
    /// </summary>
    public static (Tensor Cos, Tensor Sin) CosSin(float[] inverseFrequencies, long seqLen, ScalarType dtype, Device device, double scale = 1.0)
    {
        using var scope = NewDisposeScope();
        var inv = tensor(inverseFrequencies, dtype: ScalarType.Float32, device: device);
        var positions = ScalarOps.Arange(seqLen, ScalarType.Float32, device);
        var freqs = outer(positions, inv);                // (T, D/2)
        return Tables(cat([freqs, freqs], dim: -1), dtype, scale);   // (T, D)
    }

    /// <summary>
    /// cos and sin of position·inv_freq for per-row <paramref name="positionIds"/> (B, T) (packed rows restart them at every
    /// example), each (B, 1, T, D), so they broadcast over the heads in <see cref="Apply"/>. For positions 0…T−1 the values
    /// are those of <see cref="CosSin(float[], long, ScalarType, Device, double)"/> bit for bit (the same float32 products).
    /// </summary>
    public static (Tensor Cos, Tensor Sin) CosSin(float[] inverseFrequencies, Tensor positionIds, ScalarType dtype, double scale = 1.0)
    {
        using var scope = NewDisposeScope();
        var inv = tensor(inverseFrequencies, dtype: ScalarType.Float32, device: positionIds.device);
        var freqs = positionIds.to_type(ScalarType.Float32).unsqueeze(-1).mul(inv);   // (B, T, D/2)
        return Tables(cat([freqs, freqs], dim: -1).unsqueeze(1), dtype, scale);   // (B, 1, T, D)
    }

    // cos and sin of the float32 angles, scaled, then cast: transformers multiplies the float32 tables by a Python float
    // before casting. Moved out of the caller's dispose scope.
    private static (Tensor Cos, Tensor Sin) Tables(Tensor angles, ScalarType dtype, double scale)
    {
        var cos = angles.cos();
        var sin = angles.sin();
        if (scale != 1.0)
        {
            cos = cos.Mul(scale);
            sin = sin.Mul(scale);
        }
        return (cos.to_type(dtype).MoveToOuterDisposeScope(), sin.to_type(dtype).MoveToOuterDisposeScope());
    }

    /// <summary>
    /// x·cos + rotate_half(x)·sin for x (B, heads, T, D) and cos/sin (T, R), or (B, 1, T, R) for per-row positions; when R &lt; D only the first R dimensions
    /// rotate and the others are kept as they are (partial rotary).
    /// </summary>
    public static Tensor Apply(Tensor x, Tensor cos, Tensor sin)
    {
        long rotary = cos.shape[^1];
        if (rotary < x.shape[^1])
        {
            using var partial = NewDisposeScope();
            var turned = Apply(x.narrow(-1, 0, rotary), cos, sin);
            var passed = x.narrow(-1, rotary, x.shape[^1] - rotary);
            return cat([turned, passed], dim: -1).MoveToOuterDisposeScope();
        }
        using var scope = NewDisposeScope();
        long half = x.shape[^1] / 2;
        var x1 = x.narrow(-1, 0, half);
        var x2 = x.narrow(-1, half, half);
        var rotated = cat([x2.neg(), x1], dim: -1);       // rotate_half: (−x₂, x₁)
        return (x * cos).Add(rotated * sin).MoveToOuterDisposeScope();
    }
}
