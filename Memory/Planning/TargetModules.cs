namespace QuantPeft.Memory.Planning;

/// <summary>The set of decoder projections an adapter is attached to.</summary>
[Flags]
public enum TargetModules
{
    /// <summary>No projection.</summary>
    None = 0,
    /// <summary><c>q_proj</c>.</summary>
    Q = 1,
    /// <summary><c>k_proj</c>.</summary>
    K = 2,
    /// <summary><c>v_proj</c>.</summary>
    V = 4,
    /// <summary><c>o_proj</c>.</summary>
    O = 8,
    /// <summary><c>gate_proj</c>.</summary>
    Gate = 16,
    /// <summary><c>up_proj</c>.</summary>
    Up = 32,
    /// <summary><c>down_proj</c>.</summary>
    Down = 64,
    /// <summary>The four attention projections (<c>attn</c>).</summary>
    Attn = Q | K | V | O,
    /// <summary>The three MLP projections (<c>mlp</c>).</summary>
    Mlp = Gate | Up | Down,
    /// <summary>Every linear projection of a decoder layer (<c>all-linear</c>).</summary>
    AllLinear = Attn | Mlp,
}

/// <summary>Conversions between <see cref="TargetModules"/>, single modules and the command-line spelling.</summary>
public static class TargetModulesExtensions
{
    /// <summary>The flag of one projection.</summary>
    public static TargetModules Flag(this LinearModule module) => (TargetModules)(1 << (int)module);

    /// <summary>Whether <paramref name="module"/> is in the set.</summary>
    public static bool Contains(this TargetModules set, LinearModule module) => (set & module.Flag()) != 0;

    /// <summary>The command-line spelling: <c>all-linear</c>, <c>attn</c>, <c>mlp</c> or a list such as <c>q,v</c>.</summary>
    public static string ToKnob(this TargetModules set) => set switch
    {
        TargetModules.AllLinear => "all-linear",
        TargetModules.Attn => "attn",
        TargetModules.Mlp => "mlp",
        _ => string.Join(",", Enum.GetValues<LinearModule>().Where(m => set.Contains(m)).Select(m => m.ToString().ToLowerInvariant())),
    };
}
