using QuantPeft.Memory.Planning;

namespace QuantPeft.Trainers.Adapters.Methods;

/// <summary>
/// Every adapter method's <see cref="AdapterDescriptor"/>, registered once. Attaching adapters, loading with an SVD
/// init, saving the run's adapter and opening one for export read it instead of switching on the method.
/// </summary>
public static class AdapterRegistry
{
    /// <summary>The adapter methods the trainer runs.</summary>
    public static IReadOnlyList<AdapterDescriptor> All { get; } =
    [
        new LoraDescriptor(), new DoraDescriptor(), new PissaDescriptor(), new VeraDescriptor(), new OsoraDescriptor(), new LoramDescriptor(), new BoneDescriptor(),
        new DyloraDescriptor(), new NloraDescriptor(),
        new RandLoraDescriptor(),
        new EvaDescriptor(), new LoraGaDescriptor(),
    ];

    /// <summary>Whether <paramref name="method"/> is an adapter method the trainer runs.</summary>
    public static bool Has(TrainingMethod method) => All.Any(d => d.Method == method);

    /// <summary>The descriptor of <paramref name="method"/>.</summary>
    /// <exception cref="AdapterException"><paramref name="method"/> trains the base weights, not adapters.</exception>
    public static AdapterDescriptor Of(TrainingMethod method) =>
        All.FirstOrDefault(d => d.Method == method) ?? throw new AdapterException($"--method {Knob.Name(method)} trains the base weights, not adapters");

    /// <summary>The <c>peft_type</c> values <c>qpeft export</c> reads.</summary>
    public static IReadOnlyList<string> ExportedPeftTypes { get; } = [.. All.Select(d => d.PeftType).Distinct()];
}
