using QuantPeft.Formats.HuggingFace;
using QuantPeft.Optimizers;
using QuantPeft.Trainers.Model;
using Parameter = TorchSharp.Modules.Parameter;
using static TorchSharp.torch;

namespace QuantPeft.Trainers.Recipes.Components;

/// <summary>
/// The state of one <see cref="FinetuneRecipe"/> run as its components see it: the options, the resolved targets,
/// the model, what trains and the optimizer. The recipe fills it phase by phase; components change only the optimizer
/// (through <see cref="ReplaceOptimizer"/>) and the two step policies.
/// </summary>
public sealed class RecipeRun
{
    private CausalLm? _model;
    private Optimizer? _optimizer;

    internal RecipeRun(FinetuneOptions options, ModelSpec spec, IReadOnlyList<string> targets, Device device,
        Func<IReadOnlyList<(string Name, Parameter Param)>, Optimizer> createOptimizer)
    {
        Options = options;
        Spec = spec;
        Targets = targets;
        Device = device;
        CreateOptimizer = createOptimizer;
    }

    /// <summary>The run's options (after the model's own target names were applied).</summary>
    public FinetuneOptions Options { get; }

    /// <summary>The model architecture.</summary>
    public ModelSpec Spec { get; }

    /// <summary>The adapted projections, resolved once from <see cref="FinetuneOptions.Targets"/>.</summary>
    public IReadOnlyList<string> Targets { get; }

    /// <summary>The device the whole run lives on.</summary>
    public Device Device { get; }

    /// <summary>Whether the run lives in host memory (the C heap holds its tensors).</summary>
    public bool IsHost => RunDevice.IsHost(Device);

    /// <summary>The loaded model (from <see cref="IRecipeComponent.AfterLoad"/> on).</summary>
    public CausalLm Model
    {
        get => _model ?? throw new InvalidOperationException("the model is not loaded yet");
        internal set => _model = value;
    }

    /// <summary>The prepared SFT data (from <see cref="IRecipeComponent.AfterLoad"/> on); null for a preference run.</summary>
    public Data.TrainingDataset? Data { get; internal set; }

    /// <summary>Every parameter the run trains at some point (what a checkpoint holds).</summary>
    public IReadOnlyList<(string Name, Parameter Param)> Trainable { get; internal set; } = [];

    /// <summary>The parameters the current optimizer updates (clipped together): <see cref="Trainable"/> unless a component narrows it.</summary>
    public IReadOnlyList<(string Name, Parameter Param)> Optimized { get; private set; } = [];

    /// <summary>Builds the run's kind of optimizer over a trainable set (the method's groups, the optimizer flag, paging).</summary>
    public Func<IReadOnlyList<(string Name, Parameter Param)>, Optimizer> CreateOptimizer { get; }

    /// <summary>The optimizer in use; null before one is built or after the run is freed.</summary>
    public Optimizer? Optimizer => _optimizer;

    /// <summary>Whether the step clips the global gradient norm (false when updates already happened inside backward).</summary>
    public bool ClipsGradients { get; set; } = true;

    /// <summary>Whether gradients are zeroed in place after a step rather than dropped.</summary>
    public bool KeepsGradients { get; set; }

    /// <summary>
    /// Makes <paramref name="optimizer"/> the run's optimizer over <paramref name="optimized"/>. The caller has already
    /// disposed of (or carried over) the one it replaces; handing back the current optimizer changes nothing.
    /// </summary>
    public void ReplaceOptimizer(Optimizer optimizer, IReadOnlyList<(string Name, Parameter Param)> optimized)
    {
        _optimizer = optimizer;
        Optimized = optimized;
    }

    internal void ReleaseOptimizer()
    {
        _optimizer?.Dispose();
        _optimizer = null;
    }
}
