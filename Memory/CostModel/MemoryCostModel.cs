using QuantPeft.Memory.Planning;

namespace QuantPeft.Memory.CostModel;

/// <summary>
/// Prices one strategy. Memory is taken at the larger of two phases:
/// <list type="bullet">
/// <item>backward: weights, adapters, optimizer states, gradients (all, or the largest update unit's under
/// layer-wise updates, whose step then also runs here), saved activations, then either the logits (at the
/// loss) or one layer's recomputed set and activation gradients (inside a layer's backward), whichever is
/// larger, and one dequantized matrix;</item>
/// <item>optimizer step (without layer-wise updates): weights, adapters, states, all gradients and the step's temporaries.</item>
/// </list>
/// The runtime overhead is added to both; the fragmentation margin is a fraction of the allocated peak.
/// </summary>
public static class MemoryCostModel
{
    /// <summary>Estimates the memory of <paramref name="s"/> on <paramref name="inv"/>.</summary>
    public static MemoryEstimate Estimate(ModelInventory inv, Strategy s, Workload w, Budget budget, CostSettings settings)
    {
        TrainableSet set = TrainableSet.Build(inv, s);
        long baseWeights = WeightCost.BaseWeights(inv, s);
        long adapter = 2 * set.AdapterElements;
        OptimizerBytes opt = OptimizerCost.Estimate(set, s, settings, budget.DeviceKind);
        long grads = 2 * (s.Layerwise ? set.LargestUnitElements : set.TrainableElements);
        ActivationBytes act = ActivationCost.Estimate(inv, set, s, w, settings);
        long dequant = WeightCost.DequantBuffer(inv, s);

        long backward = grads + act.Peak + dequant + (s.Layerwise ? opt.StepTemp : 0);
        long step = s.Layerwise ? 0 : grads + opt.StepTemp;
        bool backwardPeak = backward >= step;

        var device = new Dictionary<MemoryComponent, long>();
        foreach (MemoryComponent c in MemoryComponents.DeviceOrder) device[c] = 0;
        device[MemoryComponent.RuntimeOverhead] = budget.EffectiveOverhead;
        device[MemoryComponent.BaseWeights] = baseWeights;
        device[MemoryComponent.AdapterWeights] = adapter;
        device[MemoryComponent.OptimizerStates] = opt.Device;
        device[MemoryComponent.Gradients] = grads;
        if (backwardPeak)
        {
            bool logits = act.LogitsAtPeak;
            device[MemoryComponent.Activations] = act.Saved + (logits ? 0 : act.Recompute);
            device[MemoryComponent.ActivationGradients] = logits ? 0 : act.Gradients;
            device[MemoryComponent.Logits] = logits ? act.Logits : 0;
            device[MemoryComponent.DequantBuffer] = dequant;
            if (s.Layerwise) device[MemoryComponent.OptimizerStepTemp] = opt.StepTemp;
        }
        else device[MemoryComponent.OptimizerStepTemp] = opt.StepTemp;

        long allocated = device.Values.Sum() - budget.EffectiveOverhead;
        device[MemoryComponent.Fragmentation] = (long)Math.Round(allocated * budget.EffectiveFragmentation);

        var host = new Dictionary<MemoryComponent, long> { [MemoryComponent.PagedStatesHost] = opt.Host };
        return new MemoryEstimate { Device = device, Host = host, PeakPhase = backwardPeak ? "backward" : "optimizer-step" };
    }
}
