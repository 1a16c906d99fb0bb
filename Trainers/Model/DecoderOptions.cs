using TorchSharp;
using static TorchSharp.torch;

namespace QuantPeft.Trainers.Model;

/// <summary>
/// Runtime choices for a <see cref="CausalLm"/> that are not part of the architecture: where and in
/// what precision it computes, how it attends, whether it recomputes blocks in backward, and who
/// builds its linear projections.
/// </summary>
public sealed record DecoderOptions
{
    /// <summary>Dtype of parameters and activations; bf16 unless a test needs float32.</summary>
    public ScalarType ComputeDType { get; init; } = ScalarType.BFloat16;

    /// <summary>Device for parameters and activations; null means the CPU.</summary>
    public Device? Device { get; init; }

    /// <summary>Attention kernel; see <see cref="AttentionImplementation"/>.</summary>
    public AttentionImplementation Attention { get; init; } = AttentionImplementation.Fused;

    /// <summary>Recompute each decoder block in backward, keeping only its input (see <see cref="BlockCheckpoint"/>).</summary>
    public bool GradientCheckpointing { get; init; }

    /// <summary>Builds the q/k/v/o and gate/up/down projections; null means <see cref="LinearFactories.Plain"/> in <see cref="ComputeDType"/>.</summary>
    public LinearFactory? LinearFactory { get; init; }

    /// <summary>Structured pruning applied while loading (LoRAM); null builds every block at the spec's widths.</summary>
    public IStructuredPruning? Pruning { get; init; }
}
