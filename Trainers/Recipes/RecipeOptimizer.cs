using QuantPeft.Memory.Planning;
using QuantPeft.Optimizers;
using QuantPeft.Optimizers.GaLore;
using QuantPeft.Trainers.Strategies;
using TorchSharp;
using Parameter = TorchSharp.Modules.Parameter;
using static TorchSharp.torch;

namespace QuantPeft.Trainers.Recipes;

/// <summary>The optimizer a run builds over a trainable set: the method's parameter groups, <c>--optimizer</c>, and paging on a GPU.</summary>
internal static class RecipeOptimizer
{
    /// <exception cref="RecipeException">The optimizer refuses the configuration (the message names the flags).</exception>
    public static Optimizer Create(FinetuneOptions options, Device device, IReadOnlyList<(string Name, Parameter Param)> trainable)
    {
        var group = new ParamGroupOptions(Lr: options.LearningRate, WeightDecay: options.WeightDecay);
        GaLoreOptions? galore = options.Method switch
        {
            TrainingMethod.Galore => new GaLoreOptions(Rank: options.Rank),
            // The released Natural GaLore projects both sides (its Tucker factors of a matrix are U and V).
            TrainingMethod.NaturalGalore => new GaLoreOptions(Rank: options.Rank, ProjectionType: GaLoreProjectionType.Full, Natural: new NaturalGaLoreOptions()),
            _ => null,
        };
        try
        {
            return OptimizerFactory.Create(options.Optimizer, FullParameterTraining.TrainsBaseWeights(options.Method)
                ? FullParameterTraining.Groups(trainable, group, galore)
                : [new ParamGroup("adapters", trainable, group)], DevicePaging(options, device, trainable));
        }
        catch (OptimizerConfigException e)
        {
            throw new RecipeException(galore is null ? $"--optimizer: {e.Message}" : $"--optimizer {Knob.Name(options.Optimizer)} --rank {options.Rank}: {e.Message}");
        }
    }

    // Paged states on a GPU: pinned host pages, with room on the device for the f32 moments (m and v) of the two largest
    // parameters, the one being updated and the next one prefetched; the planner prices the paged share of the device
    // as the largest buffer (docs/optimizers.md). The CPU keeps the factory's default pager.
    private static OptimizerBuildOptions? DevicePaging(FinetuneOptions options, Device device, IReadOnlyList<(string Name, Parameter Param)> trainable) =>
        PagesOnDevice(device.type, options.Optimizer, trainable.Count)
            ? new OptimizerBuildOptions(Pager: new QuantPeft.Memory.Paging.PagerOptions(DeviceMomentBytes(trainable), device, QuantPeft.Memory.Paging.PageBacking.PinnedHost))
            : null;

    /// <summary>Whether the run pages its optimizer states through device memory (a paged optimizer on a GPU).</summary>
    internal static bool PagesOnDevice(DeviceType device, OptimizerKind optimizer, int trainableCount) =>
        device == DeviceType.CUDA && OptimizerFactory.IsPaged(optimizer) && trainableCount > 0;

    /// <summary>The device room of paged states: f32 m and v (2 × 4 bytes) of the two largest parameters.</summary>
    internal static long DeviceMomentBytes(IReadOnlyList<(string Name, Parameter Param)> trainable) =>
        2 * 2 * 4 * trainable.Max(p => p.Param.numel());
}
