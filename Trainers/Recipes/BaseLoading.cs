using QuantPeft.Memory.Planning;
using QuantPeft.Trainers.Adapters;
using QuantPeft.Trainers.Adapters.Methods;
using QuantPeft.Trainers.Model;
using static TorchSharp.torch;

namespace QuantPeft.Trainers.Recipes;

/// <summary>How a run's frozen base projections are built while the checkpoint streams in: as the options ask, or as a pre-quantized folder decided.</summary>
internal static class BaseLoading
{
    /// <summary>The linear factory for <paramref name="o"/>'s base; <paramref name="targets"/> are the resolved adapted projections.</summary>
    /// <exception cref="RecipeException">The LQ-LoRA budget cannot be met.</exception>
    public static LinearFactory Factory(FinetuneOptions o, IReadOnlyList<string> targets, Device device)
    {
        // A pre-quantized folder decides the bases itself (its format, per-matrix LQ-LoRA configurations); Setup has
        // checked that the options agree with it.
        var prequantized = PrequantizedFolder.Read(o.ModelFolder);
        var factory = prequantized is not null ? prequantized.Factory(o.Rank, new LoraOptions(o.Rank, o.Alpha).Scaling, ScalarType.BFloat16, device)
            : o.Weights == WeightFormat.LqLora ? LqLoraFactory(o, targets, device)
            : BaseWeights.Factory(o.Weights, o.DoubleQuant, ScalarType.BFloat16, device);
        // PiSSA and OSoRA decompose each target's full-precision weight as it streams in; only the residual reaches the base.
        if (AdapterRegistry.Has(o.Method) && AdapterRegistry.Of(o.Method).LoadInit is not null)
            factory = SvdInitOnLoad.Wrap(factory, o.Method,
                o.Rank, new LoraOptions(o.Rank, o.Alpha).Scaling, targets);
        return factory;
    }

    // LQ-LoRA: a scoring pass over the checkpoint assigns NF2/NF3/NF4 per projection under the bit budget; the
    // loading pass then decomposes each target W ≈ Q + L1·L2 as it streams in.
    private static LinearFactory LqLoraFactory(FinetuneOptions o, IReadOnlyList<string> targets, Device device)
    {
        double scaling = new LoraOptions(o.Rank, o.Alpha).Scaling;
        try
        {
            var configs = ModelFolder.WithWeights(o.ModelFolder, source => LqLoraPlan.Allocate(source, targets, o.Rank, o.LqLoraBits));
            return LqLoraPlan.Factory(configs, targets, o.Rank, scaling, ScalarType.BFloat16, device);
        }
        catch (QuantPeft.Quant.QuantInputException e)
        {
            throw new RecipeException($"--weights {Knob.Name(o.Weights, o.LqLoraBits)}: {e.Message}");
        }
    }
}

