namespace QuantPeft.Optimizers.GaLore;

/// <summary>Which side(s) of G ∈ R^{m×n} the GaLore projector acts on (galore-torch's <c>proj_type</c>).</summary>
public enum GaLoreProjectionType
{
    /// <summary>m ≥ n: right (R = G Qᵀ, m×r); m &lt; n: left (R = Pᵀ G, r×n) — the smaller state.</summary>
    Std,
    /// <summary>The opposite side choice of <see cref="Std"/>.</summary>
    ReverseStd,
    /// <summary>Always left: R = Pᵀ G (r×n), back P N.</summary>
    Left,
    /// <summary>Always right: R = G Qᵀ (m×r), back N Q.</summary>
    Right,
    /// <summary>Both sides: R = Pᵀ G Qᵀ (r×r), back P N Q.</summary>
    Full,
}
