using QuantPeft.Quant.Torch;
using TorchSharp;
using static TorchSharp.torch;

namespace QuantPeft.Quant.LqLora;

/// <summary>
/// A diagonal Fisher estimate for one weight matrix, F = Σ g² over per-example calibration gradients, and its
/// two-sided row/column approximation used by data-aware LQ-LoRA. Owns its tensors.
/// </summary>
public sealed class FisherWeights : IDisposable
{
    private FisherWeights(Tensor full, Tensor rows, Tensor columns)
    {
        Full = full.DetachFromDisposeScope();
        Rows = rows.DetachFromDisposeScope();
        Columns = columns.DetachFromDisposeScope();
    }

    /// <summary>F (float32, same shape as the weight): the sum of squared per-example gradients.</summary>
    public Tensor Full { get; }

    /// <summary><c>w_r = √(mean_j F_ij)</c>, (m, 1).</summary>
    public Tensor Rows { get; }

    /// <summary><c>w_c = √(mean_i F_ij)</c>, (1, n).</summary>
    public Tensor Columns { get; }

    /// <summary>Accumulates F from per-example gradients (each the shape of the weight, batch size 1).</summary>
    /// <exception cref="QuantInputException">No gradients, or shapes that differ.</exception>
    public static FisherWeights FromGradients(IEnumerable<Tensor> gradients, string name = "weight")
    {
        using var scope = torch.NewDisposeScope();
        Tensor? sum = null;
        int count = 0;
        foreach (var g in gradients)
        {
            if (g.dim() != 2 || (sum is not null && !g.shape.SequenceEqual(sum.shape)))
                throw new QuantInputException(
                    $"'{name}': calibration gradient {count} has shape [{string.Join(", ", g.shape)}], expected a 2-D " +
                    $"tensor{(sum is null ? "" : $" of shape [{string.Join(", ", sum.shape)}]")}.");
            var g32 = g.to(ScalarType.Float32);
            sum = sum is null ? g32.Square() : sum.AddInPlace(g32.Square());
            count++;
        }
        if (sum is null) throw new QuantInputException($"'{name}': no calibration gradients were given.");
        return FromFisher(sum);
    }

    /// <summary>Wraps an already accumulated diagonal Fisher F (copied; non-negative, 2-D).</summary>
    public static FisherWeights FromFisher(Tensor fisher)
    {
        using var scope = torch.NewDisposeScope();
        var full = fisher.to(ScalarType.Float32).clone();
        var rows = full.mean([1], keepdim: true).sqrt_();
        var cols = full.mean([0], keepdim: true).sqrt_();
        return new FisherWeights(full, rows, cols);
    }

    /// <inheritdoc />
    public void Dispose()
    {
        Full.Dispose();
        Rows.Dispose();
        Columns.Dispose();
    }
}
