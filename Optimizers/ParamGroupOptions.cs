using QuantPeft.Optimizers.GaLore;

namespace QuantPeft.Optimizers;

/// <summary>
/// The hyperparameters of one parameter group. Immutable; <see cref="Validate"/> runs once when the
/// group is built, so the update rules can trust these values.
/// </summary>
/// <param name="Lr">Learning rate (≥ 0).</param>
/// <param name="Beta1">First-moment decay, in [0, 1).</param>
/// <param name="Beta2">Second-moment decay, in [0, 1).</param>
/// <param name="Eps">Added to √v̂ in the denominator (&gt; 0).</param>
/// <param name="WeightDecay">Decoupled weight decay coefficient (≥ 0).</param>
/// <param name="GaLore">When set, 2-D parameters of this group are updated in a GaLore subspace.</param>
public sealed record ParamGroupOptions(
    double Lr = 1e-3,
    double Beta1 = 0.9,
    double Beta2 = 0.999,
    double Eps = 1e-8,
    double WeightDecay = 0.0,
    GaLoreOptions? GaLore = null)
{
    /// <summary>Checks every field; <paramref name="groupName"/> appears in the error message.</summary>
    /// <exception cref="OptimizerConfigException">A field is out of range.</exception>
    public void Validate(string groupName)
    {
        CheckLr(Lr, groupName);
        CheckBeta(Beta1, "beta1", groupName);
        CheckBeta(Beta2, "beta2", groupName);
        if (!(Eps > 0) || double.IsInfinity(Eps))
            throw new OptimizerConfigException($"parameter group '{groupName}': eps must be a finite number > 0, found {Eps}");
        if (!(WeightDecay >= 0) || double.IsInfinity(WeightDecay))
            throw new OptimizerConfigException($"parameter group '{groupName}': weight_decay must be a finite number >= 0, found {WeightDecay}");
        GaLore?.Validate(groupName);
    }

    internal static void CheckLr(double lr, string groupName)
    {
        if (!(lr >= 0) || double.IsInfinity(lr))
            throw new OptimizerConfigException($"parameter group '{groupName}': lr must be a finite number >= 0, found {lr}");
    }

    private static void CheckBeta(double beta, string name, string groupName)
    {
        if (!(beta >= 0 && beta < 1))
            throw new OptimizerConfigException($"parameter group '{groupName}': {name} must be in [0, 1), found {beta}");
    }
}
