using QuantPeft.Trainers.Model;
using static TorchSharp.torch;

namespace QuantPeft.Trainers.Adapters.Methods;

/// <summary>
/// The run's first training micro-batches as a data-driven initialisation reads them (EVA's activations, LoRA-GA's
/// gradient): the same micro-batches, in the same seeded order, that the run's first steps train on.
/// </summary>
public interface IInitBatches
{
    /// <summary>How many micro-batches the initialisation may read (indices 0 … Count − 1).</summary>
    int Count { get; }

    /// <summary>
    /// Micro-batch <paramref name="index"/>'s training loss through the model, in the autograd graph, divided so that
    /// the sum over <paramref name="of"/> consecutive micro-batches is the mean over all their target tokens (one large batch).
    /// </summary>
    Tensor Loss(int index, int of);

    /// <summary>Micro-batch <paramref name="index"/> through the model, the output discarded (the projections' inputs are what is read).</summary>
    void Forward(int index);

    /// <summary>A bool mask [batch · sequence] (row-major) of micro-batch <paramref name="index"/>'s real tokens, padding excluded.</summary>
    Tensor RealTokens(int index);
}

/// <summary>What a data-driven initialisation is computed from.</summary>
/// <param name="Model">The loaded model, before adapters are attached (its target projections are <see cref="IBaseLinear"/>s).</param>
/// <param name="Targets">The target projections, e.g. <c>q_proj</c>.</param>
/// <param name="Options">The run's rank r (the budget per target), α, dropout, rsLoRA.</param>
/// <param name="Batches">The training micro-batches to read.</param>
/// <param name="Progress">Called with a short line after each micro-batch read; may be null.</param>
public sealed record DataInitRequest(CausalLm Model, IReadOnlyList<string> Targets, LoraOptions Options, IInitBatches Batches, Action<string>? Progress = null);

/// <summary>
/// An initialisation computed from training data after the model is loaded and before adapters are attached (EVA,
/// LoRA-GA): the factors each target's adapter starts from, by module path (e.g. <c>model.layers.0.self_attn.q_proj</c>),
/// f32 and owned by the caller. It must leave the model as it found it (same modules, same weights, same
/// <c>requires_grad</c>) and depend only on the model and the batches, so that a run is reproducible under its seed.
/// </summary>
public delegate IReadOnlyDictionary<string, SvdInitFactors> DataDrivenInit(DataInitRequest request);
