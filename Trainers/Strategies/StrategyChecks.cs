using QuantPeft.Memory.Planning;
using QuantPeft.Optimizers;
using QuantPeft.Trainers.Recipes;

namespace QuantPeft.Trainers.Strategies;

/// <summary>
/// The cross-flag rules of the full-parameter methods, GaLore, layer-wise updates and LISA: knobs that
/// contradict each other are an error naming both flags, never a silent override.
/// </summary>
public static class StrategyChecks
{
    /// <summary>Checks <paramref name="o"/>; layer counts are checked later, against the model.</summary>
    /// <exception cref="RecipeException">Two knobs contradict each other, or LISA's γ is below 1.</exception>
    public static void Check(FinetuneOptions o)
    {
        string method = $"--method {Knob.Name(o.Method)}";
        bool full = FullParameterTraining.TrainsBaseWeights(o.Method);
        bool galoreOptimizer = OptimizerFactory.IsGaLore(o.Optimizer);
        string optimizer = $"--optimizer {Knob.Name(o.Optimizer)}";
        if (full && o.Weights != WeightFormat.Bf16)
            throw new RecipeException(
                $"--weights {Knob.Name(o.Weights, o.LqLoraBits)} contradicts {method}: it trains the base weights themselves, which must be dense; use --weights bf16");
        if (o.Method == TrainingMethod.Galore && o.Optimizer is not (OptimizerKind.Galore or OptimizerKind.Galore8bit))
            throw new RecipeException($"{optimizer} contradicts {method}: expected --optimizer {Knob.Name(OptimizerKind.Galore)} or {Knob.Name(OptimizerKind.Galore8bit)}");
        if (o.Method == TrainingMethod.NaturalGalore && o.Optimizer != OptimizerKind.NaturalGalore)
            throw new RecipeException($"{optimizer} contradicts {method}: expected --optimizer {Knob.Name(OptimizerKind.NaturalGalore)}");
        if (galoreOptimizer && o.Method is not (TrainingMethod.Galore or TrainingMethod.NaturalGalore))
            throw new RecipeException(
                $"{optimizer} contradicts {method}: GaLore projects the gradients of full weight matrices; use --method {Knob.Name(o.Optimizer == OptimizerKind.NaturalGalore ? TrainingMethod.NaturalGalore : TrainingMethod.Galore)}");
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
