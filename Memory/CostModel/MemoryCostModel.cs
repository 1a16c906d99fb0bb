using QuantPeft.Memory.Planning;
using QuantPeft.Memory.Planning.Methods;

namespace QuantPeft.Memory.CostModel;

/// <summary>
/// Prices one strategy. Memory is taken at the largest of its phases:
/// <list type="bullet">
/// <item>backward: weights, adapters, optimizer states, gradients (all, or the largest update unit's under
/// layer-wise updates, whose step then also runs here), saved activations, then either the logits (at the
/// loss) or one layer's recomputed set and activation gradients (inside a layer's backward), whichever is
/// larger, and one dequantized matrix;</item>
/// <item>optimizer step (without layer-wise updates): weights, adapters, states, all gradients and the step's temporaries;</item>
/// <item>under QuantPeft's runtime, when the LM head trains, the loss's backward: weights, adapters, states, saved
/// activations, logits, the head's gradient and its f32 accumulator (<see cref="CostSettings.HeadGradientInF32"/>);</item>
/// <item>on a CPU device only, the load: weights and the loader's staging of the largest tensor (<see cref="WeightCost.LoadStaging"/>).</item>
/// </list>
/// The runtime overhead is added to each; the fragmentation margin is a fraction of the allocated peak.
/// </summary>
public static class MemoryCostModel
{
    /// <summary>Estimates the memory of <paramref name="s"/> on <paramref name="inv"/>.</summary>
    public static MemoryEstimate Estimate(ModelInventory inv, Strategy s, Workload w, Budget budget, CostSettings settings)
    {
        TrainableSet set = TrainableSet.Build(inv, s);
        long baseWeights = WeightCost.BaseWeights(inv, s);
        long adapter = settings.AdapterBytes * set.AdapterElements;
        // Full-parameter gradients are bf16 like their weights; adapter gradients take the adapters' dtype.
        int gradBytes = set.AdapterElements > 0 ? settings.AdapterBytes : 2;
        OptimizerBytes opt = OptimizerCost.Estimate(set, s, settings, budget.DeviceKind);
        long dequant = WeightCost.DequantBuffer(inv, s, settings.DequantSlabRows,
            budget.DeviceKind == DeviceKind.Cuda ? settings.DeviceSlabElements : null);
        // QuantPeft keeps one shared f32 slab for row norms (DoRA's) for the process, beside the decode buffer.
        if (MethodRegistry.Of(s.Method).Adapter?.RowNormWorkspace == true && settings.DoraNormSlabElements is long slab) dequant += 4 * slab;
        // A shared decode buffer outlives the matmuls (QuantPeft keeps it for the process), so the step sees it too.
        long stepDequant = settings.DequantSlabRows is null ? 0 : dequant;
        ActivationBytes act = ActivationCost.Estimate(inv, set, s, w, settings);
        long grads, stepGrads, backward, step, backwardTemp;
        if (s.Layerwise && settings.DecodedMomentStep)
        {
            // QuantPeft's layer-wise mode: each projection steps inside backward as its gradient arrives; the LM
            // head's gradient exists from the start of backward, and every gradient that is not a projection's
            // (embedding, head, norms) waits for the step after backward.
            long projection = 2 * set.Tensors.Where(t => t.IsGaloreMatrix).Select(t => t.Elements).DefaultIfEmpty(0).Max();
            long head = 2 * set.Tensors.Where(t => t.Unit == UpdateUnit.LmHead).Sum(t => t.Elements);
            grads = head + projection;
            stepGrads = 2 * set.Tensors.Where(t => !t.IsGaloreMatrix).Sum(t => t.Elements);
            backwardTemp = opt.InBackwardStepTemp;
            backward = grads + act.Peak + dequant + backwardTemp;
            step = stepGrads + opt.StepTemp + stepDequant;
        }
        else
        {
            grads = stepGrads = gradBytes * (s.Layerwise ? set.LargestUnitElements : set.TrainableElements);
            backwardTemp = s.Layerwise ? opt.StepTemp : 0;
            backward = grads + act.Peak + dequant + backwardTemp;
            step = s.Layerwise ? 0 : grads + opt.StepTemp + stepDequant;
        }
        // QuantPeft's chunked loss accumulates a training LM head's gradient in an f32 V×H buffer during the head's
        // backward, the first thing backward does: every saved activation is still alive, no other gradient exists yet.
        long headAccumulator = settings.HeadGradientInF32 && TrainsHead(inv, set) ? 4 * inv.Spec.VocabSize * inv.Spec.HiddenSize : 0;
        long headGradient = headAccumulator / 2;
        long lossBackward = headAccumulator == 0 ? 0 : headGradient + headAccumulator + act.Saved + act.Logits + dequant;
        // On the CPU the host is the device: the base streams in with one tensor staged beside it, before any adapter,
        // state or activation exists.
        long staging = budget.DeviceKind == DeviceKind.Cpu ? WeightCost.LoadStaging(inv, s) : 0;
        long training = Math.Max(lossBackward, Math.Max(backward, step)) + adapter + opt.Device;
        // DPO's reference forward runs before the policy's, beside the weights, states and (kept) gradients only.
        long reference = w.ReferenceForward ? PreferenceCost.ReferenceForward(inv, s, w, settings) + dequant + adapter + opt.Device : 0;
        bool referencePeak = reference > training && reference > staging;
        if (referencePeak) training = reference;
        bool loadPeak = staging > training;
        bool lossPeak = !loadPeak && lossBackward > Math.Max(backward, step);
        bool backwardPeak = !loadPeak && !lossPeak && backward >= step;

        var device = new Dictionary<MemoryComponent, long>();
        foreach (MemoryComponent c in MemoryComponents.DeviceOrder) device[c] = 0;
        device[MemoryComponent.RuntimeOverhead] = budget.EffectiveOverhead;
        device[MemoryComponent.BaseWeights] = baseWeights;
        device[MemoryComponent.AdapterWeights] = adapter;
        device[MemoryComponent.OptimizerStates] = opt.Device;
        device[MemoryComponent.Gradients] = lossPeak ? headGradient : backwardPeak ? grads : stepGrads;
        if (loadPeak)
        {
            device[MemoryComponent.AdapterWeights] = 0;
            device[MemoryComponent.OptimizerStates] = 0;
            device[MemoryComponent.Gradients] = 0;
            device[MemoryComponent.LoadStaging] = staging;
        }
        else if (referencePeak)
        {
            device[MemoryComponent.Gradients] = 0;
            device[MemoryComponent.Activations] = reference - dequant - adapter - opt.Device;
            device[MemoryComponent.DequantBuffer] = dequant;
        }
        else if (lossPeak)
        {
            device[MemoryComponent.Activations] = act.Saved;
            device[MemoryComponent.Logits] = act.Logits + headAccumulator;
            device[MemoryComponent.DequantBuffer] = dequant;
        }
        else if (backwardPeak)
        {
            bool logits = act.LogitsAtPeak;
            device[MemoryComponent.Activations] = act.Saved + (logits ? 0 : act.Recompute);
            device[MemoryComponent.ActivationGradients] = logits ? 0 : act.Gradients;
            device[MemoryComponent.Logits] = logits ? act.Logits : 0;
            device[MemoryComponent.DequantBuffer] = dequant;
            device[MemoryComponent.OptimizerStepTemp] = backwardTemp;
        }
        else
        {
            device[MemoryComponent.OptimizerStepTemp] = opt.StepTemp;
            device[MemoryComponent.DequantBuffer] = stepDequant;
        }

        long allocated = device.Values.Sum() - budget.EffectiveOverhead;
        device[MemoryComponent.Fragmentation] = (long)Math.Round(allocated * budget.EffectiveFragmentation);

        var host = new Dictionary<MemoryComponent, long> { [MemoryComponent.PagedStatesHost] = opt.Host };
        return new MemoryEstimate { Device = device, Host = host, PeakPhase = loadPeak ? "load" : referencePeak ? "reference-forward" : lossPeak ? "loss-backward" : backwardPeak ? "backward" : "optimizer-step" };
    }

    // The LM head trains (full-parameter methods, LISA), or with tied embeddings the embedding it shares does.
    private static bool TrainsHead(ModelInventory inv, TrainableSet set) =>
        set.Tensors.Any(t => t.Unit == UpdateUnit.LmHead || (inv.LmHeadElements == 0 && t.Unit == UpdateUnit.Embedding));
}
