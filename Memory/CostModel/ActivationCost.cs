using QuantPeft.Memory.Planning;
using QuantPeft.Memory.Planning.Methods;

namespace QuantPeft.Memory.CostModel;

/// <summary>Activation-side bytes of one micro-batch.</summary>
/// <param name="Saved">Tensors kept for backward across all layers (plus the head's); with checkpointing, the layer inputs.</param>
/// <param name="Recompute">With checkpointing, one layer's full set while it is recomputed in backward (0 otherwise).</param>
/// <param name="Gradients">Activation gradients alive while one layer runs backward.</param>
/// <param name="Logits">Logits and loss intermediates.</param>
/// <remarks>
/// The logits live from the end of the forward until the LM head's backward; a layer's recomputed set and its
/// activation gradients live later, inside the backward of that layer. The peak therefore holds
/// <c>Saved + max(Logits, Recompute + Gradients)</c>, not the sum of all four.
/// </remarks>
public readonly record struct ActivationBytes(long Saved, long Recompute, long Gradients, long Logits)
{
    /// <summary>Whether the logits (rather than one layer's backward working set) are alive at the peak.</summary>
    public bool LogitsAtPeak => Logits >= Recompute + Gradients;

    /// <summary>Bytes alive at the activation peak.</summary>
    public long Peak => Saved + Math.Max(Logits, Recompute + Gradients);
}

/// <summary>
/// What a Llama block (RMSNorm, rotary, GQA attention, SwiGLU, no dropout) keeps for backward, per token,
/// derived tensor by tensor from its forward (see docs/planner.md, "Activations"):
/// <list type="bullet">
/// <item>each RMSNorm keeps its input (fp32 when it upcasts: 4h bytes; else 2h), and its bf16 output only when its weight trains;</item>
/// <item>a linear keeps its input only when its weight trains, when it carries an adapter in the compute dtype (an f32
/// adapter keeps its own f32 copy instead), or when a quantized implementation keeps it anyway (bitsandbytes); q/k/v
/// share one input, gate/up share one;</item>
/// <item>fused attention keeps q, k, v (k and v at the KV width), its output and a float32 log-sum-exp per head;
/// eager attention keeps q, k and v repeated to all heads, and per head the s×s probabilities in fp32
/// (softmax output) and bf16 (input of the second matmul): 6·a·s bytes per token;</item>
/// <item>SwiGLU keeps gate (SiLU input), SiLU(gate) and up (the product's operands) and, when down needs it, the product;</item>
/// <item>rotary multiplies by constant cos/sin and keeps nothing per layer; residual adds keep nothing.</item>
/// </list>
/// With checkpointing only each layer's bf16 input (2h per token) is kept, plus one layer's full set while it is recomputed.
/// </summary>
public static class ActivationCost
{
    /// <summary>Prices the activations of one micro-batch of <paramref name="s"/>.</summary>
    public static ActivationBytes Estimate(ModelInventory inv, TrainableSet set, Strategy s, Workload w, CostSettings settings)
    {
        long tokens = (long)s.Batch * w.RowsPerExample * w.Seq;
        long h = inv.Spec.HiddenSize;
        int normBytes = settings.NormKeepsF32Input ? 4 : 2;

        long sum = 0, maxLayer = 0;
        for (int l = 0; l < inv.Layers.Count; l++)
        {
            long perToken = LayerBytesPerToken(inv, set, s, w, settings, l);
            sum += perToken;
            maxLayer = Math.Max(maxLayer, perToken);
        }
        long saved = s.Checkpointing ? 2 * h * inv.Layers.Count * tokens : sum * tokens;
        long recompute = s.Checkpointing ? maxLayer * tokens : 0;

        // The final norm and the LM head's input (kept only when the head trains).
        bool headTrains = set.TrainedLayers.Count > 0;
        saved += (normBytes * h + (headTrains ? 2 * h : 0)) * tokens;
        if (w.PackedRows) saved += PackedMaskBytes(inv.Spec, (long)s.Batch * w.RowsPerExample, w.Seq);

        long maxInter = inv.Layers.Max(x => x.Intermediate);
        long grads = (4 * h + 4 * maxInter) * tokens;
        long logits = s.ChunkedLoss && settings.LossChunkTokens is int chunkTokens
            ? ChunkedLossBytes(inv.Spec.VocabSize, h, tokens, chunkTokens)
            : LogitsBytes(inv.Spec.VocabSize, tokens, s.ChunkedLoss, settings.LossChunks);
        if (inv.Spec.FinalLogitSoftcap is not null)
            logits += SoftcapLogitsBytes(inv.Spec.VocabSize, tokens, s.ChunkedLoss, settings.LossChunks);
        return new ActivationBytes(saved, recompute, grads, logits);
    }

    /// <summary>
    /// The attention mask of rows that pack several examples apart: one additive (0 / −∞) mask of B·1·T·T elements in the
    /// compute dtype (2 bytes, bf16) per distinct sliding window of the model (one for most families, two for Gemma's
    /// local and global layers), built once per forward, shared by every block (SDPA keeps it for backward without a copy,
    /// as it is already additive) and alive until the step's backward ends. The bool mask it is built from lives only while
    /// it is built, before any activation is saved.
    /// </summary>
    public static long PackedMaskBytes(QuantPeft.Formats.HuggingFace.ModelSpec spec, long rows, long seq)
    {
        int windows = Enumerable.Range(0, spec.NumLayers).Select(l => spec.WindowOf(l) ?? 0).Distinct().Count();
        return windows * rows * seq * seq * 2;
    }

    /// <summary>
    /// QuantPeft's chunked loss (<c>ChunkedCrossEntropyFunction</c>), which never forms the whole logits: per chunk of
    /// c = min(T, <paramref name="chunkTokens"/>) tokens, forward holds the chunk's bf16 logits (2cV), their f32
    /// upcast (4cV) and log-sum-exp's shifted copy (4cV): 10cV; backward holds the hidden states' bf16 gradient
    /// (2TH) beside the chunk's bf16 logits (2cV), f32 softmax (4cV), bf16 logit gradient (2cV) and its product with
    /// the head (2cH). The f32 log-sum-exp per token (4T) is kept from forward to backward.
    /// </summary>
    public static long ChunkedLossBytes(long vocab, long hidden, long tokens, int chunkTokens)
    {
        long c = Math.Min(tokens, chunkTokens);
        long forward = 10 * c * vocab;
        long backward = 2 * tokens * hidden + 8 * c * vocab + 2 * c * hidden;
        return Math.Max(forward, backward) + 4 * tokens;
    }

    /// <summary>
    /// Logits and loss: bf16 logits (2 bytes per element) plus, for an unchunked loss, the fp32 upcast (4) and
    /// the fp32 log-softmax kept for backward (4) over the whole b·s·vocab; a chunked loss upcasts one chunk at a time.
    /// </summary>
    public static long LogitsBytes(long vocab, long tokens, bool chunked, int chunks)
    {
        long elements = tokens * vocab;
        return 2 * elements + (chunked ? 8 * WeightCost.Ceil(elements, chunks) : 8 * elements);
    }

    /// <summary>
    /// Gemma 2's final-logit soft-cap: unchunked, the bf16 tanh output over all logits is kept for backward (2 bytes per
    /// element); chunked, the backward holds the cap's fp32 slope for one chunk beside that chunk's logits.
    /// </summary>
    public static long SoftcapLogitsBytes(long vocab, long tokens, bool chunked, int chunks)
    {
        long elements = tokens * vocab;
        return chunked ? 4 * WeightCost.Ceil(elements, chunks) : 2 * elements;
    }

    /// <summary>Bytes per token that decoder layer <paramref name="layer"/> keeps for backward (without checkpointing).</summary>
    public static long LayerBytesPerToken(ModelInventory inv, TrainableSet set, Strategy s, Workload w, CostSettings settings, int layer)
    {
        LayerShape shape = inv.Layers[layer];
        long h = inv.Spec.HiddenSize, q = shape.QDim, kv = shape.KvDim, inter = shape.Intermediate;
        bool trained = set.TrainedLayers.Contains(layer);
        bool compiled = settings.Compiled;
        int normBytes = settings.NormKeepsF32Input && !compiled ? 4 : 2;
        // A frozen base projection keeps nothing (autograd saves a matmul operand only for the other's gradient). An
        // adapter in the compute dtype keeps the projection's own input for A's gradient; an f32 adapter keeps its f32
        // copy instead (priced with the adapter), so the compute-dtype input is then kept only by a trained weight.
        bool keepsInput(LinearModule m) => trained || (HasAdapter(s, m) && settings.AdapterBytes != 4)
            || (s.IsQuantized && settings.QuantizedLinearKeepsInput);

        long bytes = 2 * (normBytes * h + (trained && !compiled ? 2 * h : 0)); // two RMSNorms
        if (keepsInput(LinearModule.Q) || keepsInput(LinearModule.K) || keepsInput(LinearModule.V))
            bytes += 2 * h;                                                     // normed input of q/k/v
        // Soft-capped scores (Gemma 2) cannot go through the fused kernel: the runtime attends eagerly whatever was asked.
        bool fused = s.Attention == AttentionKind.Fused && inv.Spec.AttnLogitSoftcap is null;
        bytes += fused
            ? 2 * (q + 2 * kv) + 2 * q + 4 * shape.Heads                        // q, k, v, output, log-sum-exp
            : 2 * 3 * q + 6L * shape.Heads * w.Seq;                             // q, repeated k and v, probabilities
        bytes += FamilyExtraBytesPerToken(inv.Spec, shape, w, normBytes, fused);
        if (keepsInput(LinearModule.O)) bytes += 2 * q;                         // attention output → o_proj
        if (keepsInput(LinearModule.Gate) || keepsInput(LinearModule.Up))
            bytes += 2 * h;                                                     // normed input of gate/up
        bytes += (compiled ? 2 : 3) * 2 * inter;                                // gate, up (, SiLU(gate))
        if (keepsInput(LinearModule.Down) && !compiled) bytes += 2 * inter;     // SiLU(gate)·up → down_proj
        bytes += AdapterBytesPerToken(inv, s, w, shape, settings);
        return bytes;
    }

    /// <summary>
    /// What the newer families keep beyond a Llama block, per token: Gemma's two extra RMSNorms (input of each; the (1 + w)
    /// norm computes in fp32 either way), the q/k norms' inputs (Qwen3, Gemma 3), and with Gemma 2's score soft-cap the
    /// bf16 tanh output per head and key, kept for tanh's backward.
    /// </summary>
    public static long FamilyExtraBytesPerToken(QuantPeft.Formats.HuggingFace.ModelSpec spec, LayerShape shape, Workload w, int normBytes, bool fused)
    {
        long bytes = 0;
        if (spec.GemmaStyle) bytes += 2 * 4 * spec.HiddenSize;                       // pre/post feed-forward norms
        if (spec.QkNorm) bytes += normBytes * (shape.QDim + shape.KvDim);            // q_norm and k_norm inputs
        if (spec.AttnLogitSoftcap is not null && !fused) bytes += 2L * shape.Heads * w.Seq;
        return bytes;
    }

    private static bool HasAdapter(Strategy s, LinearModule m) => s.IsAdapterMethod && s.Targets.Contains(m);

    // Adapters keep their own intermediates, which their descriptor's AdapterCost prices (MethodRegistry): LoRA's A·x
    // (r) for B; DoRA also the base output (d_out) it rescales; OSoRA and VeRA two r-vectors and a d_out vector.
    // Dropout keeps the dropped copy (bf16) and its mask (1 byte) once per distinct input.
    // f32 LoRA-family adapters (CostSettings.AdapterBytes = 4) cast each projection's input to f32 for A, which keeps
    // that copy and its own f32 output: 4·(d_in + r) per projection instead of 2·r.
    private static long AdapterBytesPerToken(ModelInventory inv, Strategy s, Workload w, LayerShape shape, CostSettings settings)
    {
        if (MethodRegistry.Of(s.Method).Adapter is not { } cost) return 0;
        long h = inv.Spec.HiddenSize;
        long bytes = 0;
        foreach (LinearModule m in Enum.GetValues<LinearModule>())
        {
            if (!s.Targets.Contains(m)) continue;
            long outDim = m switch
            {
                LinearModule.Q => shape.QDim,
                LinearModule.K or LinearModule.V => shape.KvDim,
                LinearModule.Gate or LinearModule.Up => shape.Intermediate,
                _ => h,
            };
            long inDim = m switch
            {
                LinearModule.O => shape.QDim,
                LinearModule.Down => shape.Intermediate,
                _ => h,
            };
            // Phi-3: one adapter on the fused projection keeps one input copy and one A·x; each part adds its output rows.
            bytes += cost.SavedBytesPerToken(new AdapterTarget(inDim, outDim, s.Rank, TrainableSet.SharesFusedInput(inv, m)), settings.AdapterBytes == 4);
        }
        if (w.AdapterDropout > 0)
        {
            if ((s.Targets & (TargetModules.Q | TargetModules.K | TargetModules.V)) != 0) bytes += 3 * h;
            if (s.Targets.Contains(LinearModule.O)) bytes += 3 * shape.QDim;
            if ((s.Targets & (TargetModules.Gate | TargetModules.Up)) != 0) bytes += 3 * h;
            if (s.Targets.Contains(LinearModule.Down)) bytes += 3 * shape.Intermediate;
        }
        return bytes;
    }
}
