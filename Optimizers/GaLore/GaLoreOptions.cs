namespace QuantPeft.Optimizers.GaLore;

/// <summary>
/// GaLore settings of a parameter group (galore-torch: <c>rank</c>, <c>update_proj_gap</c>, <c>scale</c>,
/// <c>proj_type</c>). Applies to the group's 2-D parameters; other parameters get plain AdamW.
/// </summary>
/// <param name="Rank">Subspace rank r (1 ≤ r ≤ min(m, n) of every matrix in the group).</param>
/// <param name="UpdateProjGap">T: the projector is recomputed from the gradient's SVD at t = 0, T, 2T, …</param>
/// <param name="Scale">α, the factor on the back-projected update.</param>
/// <param name="ProjectionType">Which side(s) to project.</param>
/// <param name="Natural">When set, Natural GaLore: the projected gradient is preconditioned by the inverse
/// empirical Fisher of the recent projected gradients.</param>
public sealed record GaLoreOptions(
    int Rank = 128,
    int UpdateProjGap = 200,
    double Scale = 0.25,
    GaLoreProjectionType ProjectionType = GaLoreProjectionType.Std,
    NaturalGaLoreOptions? Natural = null)
{
    /// <summary>Checks the fields; matrix-dependent checks (rank ≤ min(m, n)) happen when the optimizer is built.</summary>
    /// <exception cref="OptimizerConfigException">A field is out of range.</exception>
    public void Validate(string groupName)
    {
        if (Rank <= 0)
            throw new OptimizerConfigException($"parameter group '{groupName}': galore rank must be >= 1, found {Rank}");
        if (UpdateProjGap <= 0)
            throw new OptimizerConfigException($"parameter group '{groupName}': galore update_proj_gap (T) must be >= 1, found {UpdateProjGap}");
        if (!(Scale > 0) || double.IsInfinity(Scale))
            throw new OptimizerConfigException($"parameter group '{groupName}': galore scale must be a finite number > 0, found {Scale}");
        Natural?.Validate(groupName);
    }
}

/// <summary>Natural GaLore settings (selfsupervised-ai/Natural-GaLore: <c>natural_history</c>, damping λ).</summary>
/// <param name="History">s: how many recent projected gradients form the empirical Fisher.</param>
/// <param name="Damping">λ in F = λI + G_h G_hᵀ.</param>
public sealed record NaturalGaLoreOptions(int History = 20, double Damping = 1e-3)
{
    /// <summary>Checks the fields.</summary>
    /// <exception cref="OptimizerConfigException">A field is out of range.</exception>
    public void Validate(string groupName)
    {
        if (History <= 0)
            throw new OptimizerConfigException($"parameter group '{groupName}': natural galore history must be >= 1, found {History}");
        if (!(Damping > 0) || double.IsInfinity(Damping))
            throw new OptimizerConfigException($"parameter group '{groupName}': natural galore damping must be a finite number > 0, found {Damping}");
    }
}
