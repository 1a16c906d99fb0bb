using QuantPeft.Formats.Peft;
using QuantPeft.Memory.Planning;
using QuantPeft.Memory.Planning.Methods;
using QuantPeft.Trainers.Export;
using QuantPeft.Trainers.Model;
using QuantPeft.Trainers.Pruning;
using QuantPeft.Trainers.Recipes;
using QuantPeft.Trainers.Recipes.Components;
using static TorchSharp.torch;

namespace QuantPeft.Trainers.Adapters.Methods;

/// <summary>
/// An initialisation computed from a projection's full-precision weight while the checkpoint streams in (PiSSA's and
/// OSoRA's SVD): the residual the base keeps and up to three factors the adapter starts from (f32, owned by the caller).
/// </summary>
public delegate (Tensor Residual, Tensor First, Tensor Second, Tensor? Third) LoadTimeInit(Tensor weight, int rank, double scaling);

/// <summary>What one projection's adapter is built from.</summary>
/// <param name="Base">The frozen projection (for a load-time init, the residual base), an <see cref="IBaseLinear"/>.</param>
/// <param name="ModulePath">e.g. <c>model.layers.0.self_attn.q_proj</c>.</param>
/// <param name="Options">Rank, α, dropout, rsLoRA.</param>
/// <param name="Factors">The factors the load-time init computed for this projection; null without one.</param>
/// <param name="Shared">The state every adapter of the model shares (<see cref="AdapterDescriptor.CreateShared"/>); null without.</param>
public sealed record AdapterLayerRequest(nn.Module<Tensor, Tensor> Base, string ModulePath, LoraOptions Options, SvdInitFactors? Factors, IDisposable? Shared);

/// <summary>What a trained adapter is saved from.</summary>
/// <param name="Folder">The adapter folder to write.</param>
/// <param name="Options">The run's options.</param>
/// <param name="Targets">The resolved target projections (e.g. <c>q_proj</c>).</param>
/// <param name="Adapters">The attached adapters in model order.</param>
/// <param name="Shared">The shared state, if the method has one.</param>
/// <param name="Recovery">LoRAM: the pruning plan the adapter is recovered through; null otherwise.</param>
public sealed record AdapterSaveRequest(string Folder, FinetuneOptions Options, IReadOnlyList<string> Targets, IReadOnlyList<AttachedAdapter> Adapters,
    IDisposable? Shared, PruningPlan? Recovery);

/// <summary>
/// The trainer's half of an adapter method, registered once in <see cref="AdapterRegistry"/>: how its layer is built
/// (and initialised, on load or from shared state), how a trained adapter is written in PEFT's format, and how
/// <c>qpeft export</c> reads that format back. The planner's half (name, cost, ranks, defaults) is the method's
/// <see cref="MethodDescriptor"/>. A new adapter method is its layer, this descriptor, its entry in both registries
/// and its tests (docs/architecture.md, "A new adapter method").
/// </summary>
public abstract class AdapterDescriptor
{
    /// <summary>The method.</summary>
    public abstract TrainingMethod Method { get; }

    /// <summary>The planner's half of the method.</summary>
    public MethodDescriptor Planning => MethodRegistry.Of(Method);

    /// <summary>Display name in messages, e.g. <c>PiSSA</c>.</summary>
    public abstract string DisplayName { get; }

    /// <summary>The <c>peft_type</c> a run of this method writes.</summary>
    public abstract string PeftType { get; }

    /// <summary>
    /// The initialisation each target computes from its full-precision weight on load (the model is then built through
    /// <see cref="SvdInitOnLoad"/>), or null when the layer initialises itself. A method with one cannot start from a
    /// pre-quantized folder.
    /// </summary>
    public virtual LoadTimeInit? LoadInit => null;

    /// <summary>
    /// The initialisation computed from the run's first training micro-batches once the model is loaded and before
    /// adapters are attached (EVA's activations, LoRA-GA's gradient), or null. The recipe's
    /// <see cref="Recipes.Components.DataDrivenInitialisation"/> runs it and hands its factors to <see cref="Create"/>
    /// through <see cref="AdapterLayerRequest.Factors"/>; a resumed run reads the factors back instead of recomputing them.
    /// </summary>
    public virtual DataDrivenInit? DataInit => null;

    /// <summary>
    /// Whether every adapter's update starts at exactly zero, so that the model with its adapters off is the model the
    /// run starts from (DPO's reference without a second copy). False for methods that move part of W into the adapter.
    /// </summary>
    public virtual bool UpdateStartsAtZero => LoadInit is null;

    /// <summary>Whether the method's adapters share state that <see cref="CreateShared"/> builds.</summary>
    public virtual bool HasSharedState => false;

    /// <summary>State every adapter of a model shares, built after the base is loaded (VeRA's and RandLoRA's random bases); null when none.</summary>
    public virtual ISharedAdapterState? CreateShared(CausalLm model, IReadOnlyList<string> targets, int rank, long seed) => null;

    /// <summary>
    /// The recipe component a run of this method installs after the run's strategy components, or null when it needs
    /// none: the hook for methods that act at a named point of every run, such as DyLoRA drawing each step's rank.
    /// </summary>
    public virtual IRecipeComponent? RecipeComponent(FinetuneOptions options) => null;

    /// <summary>Builds one projection's adapter; its layer must be an <c>nn.Module&lt;Tensor, Tensor&gt;</c>.</summary>
    /// <exception cref="AdapterException">The request does not fit the method (missing shared state, rank too large).</exception>
    public abstract AttachedAdapter Create(AdapterLayerRequest request);

    /// <summary>Writes the trained adapter to <see cref="AdapterSaveRequest.Folder"/> in the method's PEFT format (docs/formats.md).</summary>
    internal abstract void Save(AdapterSaveRequest request);

    /// <summary>
    /// Opens a saved adapter of this <see cref="PeftType"/> for <c>qpeft export</c>, or null when another descriptor of
    /// the same type reads it (DoRA, PiSSA and LoRAM are all written as PEFT LoRA, which LoRA's descriptor reads).
    /// </summary>
    internal virtual IExportableAdapter? OpenExport(string folder, PeftAdapterConfig config) => null;
}
