namespace QuantPeft.Memory.Planning.Methods;

/// <summary>One target projection as an adapter's cost formulas see it.</summary>
/// <param name="In">d_in of the projection.</param>
/// <param name="Out">d_out of the projection (for a part of a fused projection, that part's rows).</param>
/// <param name="Rank">The rank the strategy asks for, r.</param>
/// <param name="SharesInput">Whether the projection continues a fused one (Phi-3's k and v after q, up after gate), whose
/// one adapter already priced the input side: its A, its input copy and its r-vectors.</param>
public readonly record struct AdapterTarget(long In, long Out, int Rank, bool SharesInput)
{
    /// <summary>The rank a factorisation can really have: min(r, d_in, d_out).</summary>
    public long ClampedRank => Math.Min(Rank, Math.Min(In, Out));
}

/// <summary>
/// What an adapter method adds to the memory of a run, per target projection: the tensors the optimizer updates,
/// the frozen adapter tensors, the activations its forward keeps for backward, and any tensors every target shares.
/// The cost model (<c>TrainableSet</c>, <c>ActivationCost</c>) reads these instead of switching on the method; a
/// test per method holds the formulas against the tensors its layer really allocates.
/// </summary>
/// <param name="Trainable">Element counts of the trainable tensors of one target, each an optimizer tensor.</param>
/// <param name="Frozen">Elements of the frozen adapter tensors of one target (OSoRA's U_r, V_rᵀ).</param>
/// <param name="SavedBytesPerToken">Bytes per token the adapter's forward keeps for backward; the flag is true for f32
/// adapters (<c>CostSettings.AdapterBytes == 4</c>), which cast the input to f32.</param>
/// <param name="Shared">Frozen elements shared by every target, from the largest d_in, the largest d_out and r (VeRA's A, B).</param>
/// <param name="RowNormWorkspace">Whether the layer computes the weight's row norms through the runtime's one shared f32
/// slab (<c>CostSettings.DoraNormSlabElements</c>), which lives beside the decode buffer for the process (DoRA).</param>
public sealed record AdapterCost(
    Func<AdapterTarget, long[]> Trainable,
    Func<AdapterTarget, long> Frozen,
    Func<AdapterTarget, bool, long> SavedBytesPerToken,
    Func<long, long, int, long>? Shared = null,
    bool RowNormWorkspace = false)
{
    /// <summary>
    /// LoRA's pair B·A (and PiSSA's, LoRAM's, LQ-LoRA's): A [r, d_in] and B [d_out, r] trained; A·x (r values) is
    /// kept for B, and an f32 adapter also keeps its f32 input copy.
    /// </summary>
    public static AdapterCost LowRank { get; } = new(
        t => t.SharesInput ? [t.Out * t.ClampedRank] : [t.ClampedRank * t.In, t.Out * t.ClampedRank],
        _ => 0,
        (t, f32) => t.SharesInput ? 0 : f32 ? 4 * (t.In + t.Rank) : 2 * t.Rank);
}
