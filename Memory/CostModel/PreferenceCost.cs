using QuantPeft.Memory.Planning;

namespace QuantPeft.Memory.CostModel;

/// <summary>
/// The memory a preference run adds to SFT at the same shape. The activations of the pair batch are priced by
/// <see cref="ActivationCost"/> at <see cref="Workload.RowsPerExample"/> = 2 (B pairs are 2B sequences in one
/// forward). DPO's adapter-off reference forward is a phase of its own: it runs without autograd before the policy's
/// forward, so it keeps no activations, only the residual stream, one block's working set and one row's logits chunk.
/// A cached reference costs two floats per pair on the host (and a hash key each), nothing on the device.
/// </summary>
public static class PreferenceCost
{
    /// <summary>Host bytes of the reference cache for <paramref name="pairs"/> pairs: per row a float and a 16-byte key, in a hash table (about 40 bytes an entry).</summary>
    public static long CacheBytes(long pairs) => 2 * pairs * 40;

    /// <summary>Bytes alive during the reference forward besides the weights, adapters and optimizer states.</summary>
    public static long ReferenceForward(ModelInventory inv, Strategy s, Workload w, CostSettings settings)
    {
        long tokens = (long)s.Batch * w.RowsPerExample * w.Seq;
        long h = inv.Spec.HiddenSize;
        // A block's input and output (bf16), plus the block's own intermediates while it runs; nothing is kept after it.
        long maxLayer = 0;
        var frozen = TrainableSet.Build(inv, s);
        for (int l = 0; l < inv.Layers.Count; l++)
            maxLayer = Math.Max(maxLayer, ActivationCost.LayerBytesPerToken(inv, frozen, s, w, settings, l));
        long stream = 2 * 2 * h * tokens;
        // Log-probabilities are summed one row at a time through the chunked loss: one row's logits, priced as the
        // policy's are (ActivationCost.LogitsBytes) but for Seq tokens instead of the whole batch's.
        long logits = ActivationCost.LogitsBytes(inv.Spec.VocabSize, w.Seq, chunked: true, settings.LossChunks);
        return stream + maxLayer * tokens + logits;
    }
}
