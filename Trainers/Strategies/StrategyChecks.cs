using QuantPeft.Memory.Planning;
using QuantPeft.Trainers.Recipes;

namespace QuantPeft.Trainers.Strategies;

/// <summary>
/// The cross-flag rules of the full-parameter methods, GaLore, layer-wise updates and LISA: knobs that
/// contradict each other are an error naming both flags, never a silent override.
/// </summary>
public static class StrategyChecks
{
    private static readonly string[] GaLoreOptimizers = ["galore", "galore-8bit", "natural-galore"];

    /// <summary>Checks <paramref name="o"/>; layer counts are checked later, against the model.</summary>
    /// <exception cref="RecipeException">Two knobs contradict each other, or LISA's γ is below 1.</exception>
    public static void Check(FinetuneOptions o)
    {
        string method = $"--method {Knob.Name(o.Method)}";
        bool full = FullParameterTraining.TrainsBaseWeights(o.Method);
        bool galoreOptimizer = GaLoreOptimizers.Contains(o.Optimizer);
        if (full && o.Weights != WeightFormat.Bf16)
            throw new RecipeException(
                $"--weights {Knob.Name(o.Weights, o.LqLoraBits)} contradicts {method}: it trains the base weights themselves, which must be dense; use --weights bf16");
        if (o.Method == TrainingMethod.Galore && o.Optimizer is not ("galore" or "galore-8bit"))
            throw new RecipeException($"--optimizer {o.Optimizer} contradicts {method}: expected --optimizer galore or galore-8bit");
        if (o.Method == TrainingMethod.NaturalGalore && o.Optimizer != "natural-galore")
            throw new RecipeException($"--optimizer {o.Optimizer} contradicts {method}: expected --optimizer natural-galore");
        if (galoreOptimizer && o.Method is not (TrainingMethod.Galore or TrainingMethod.NaturalGalore))
            throw new RecipeException(
                $"--optimizer {o.Optimizer} contradicts {method}: GaLore projects the gradients of full weight matrices; use --method {(o.Optimizer == "natural-galore" ? "natural-galore" : "galore")}");
        if (o.Layerwise)
        {
            if (o.Method is not (TrainingMethod.Full or TrainingMethod.Galore or TrainingMethod.NaturalGalore))
                throw new RecipeException($"--layerwise on contradicts {method}: layer-wise updates apply to --method full, galore or natural-galore");
            if (o.GradientAccumulation != 1)
                throw new RecipeException(
                    $"--layerwise on contradicts --grad-accum {o.GradientAccumulation}: each weight is updated and its gradient freed during backward, so nothing can accumulate; use --grad-accum 1");
            if (o.Checkpointing)
                throw new RecipeException(
                    "--layerwise on contradicts --checkpointing on: a checkpointed block is differentiated with respect to its weights, which layer-wise updates leave without gradients; turn one of them off");
        }
        if (o.Method == TrainingMethod.Lisa && o.LisaLayers < 1)
            throw new RecipeException($"--lisa-layers: --method lisa needs at least 1 sampled layer, found {o.LisaLayers}");
    }
}
