using QuantPeft.Memory.Paging;
using QuantPeft.Memory.Planning;
using QuantPeft.Optimizers.GaLore;
using QuantPeft.Optimizers.State;

namespace QuantPeft.Optimizers;

/// <summary>Builds an <see cref="Optimizer"/> by name: the one place a name becomes rules, codec and allocator.</summary>
public static class OptimizerFactory
{
    /// <summary>The names the string overload of <see cref="Create(string, IReadOnlyList{ParamGroup}, OptimizerBuildOptions?)"/> accepts: <see cref="Knob.OptimizerNames"/>.</summary>
    public static IReadOnlyList<string> Names => Knob.OptimizerNames;

    /// <summary>Whether <paramref name="kind"/> keeps its large state buffers in paged memory.</summary>
    public static bool IsPaged(OptimizerKind kind) => kind is OptimizerKind.PagedAdamW or OptimizerKind.PagedAdamW8bit;

    /// <summary>Whether <paramref name="kind"/> stores its moments as blockwise 8-bit codes.</summary>
    public static bool IsEightBit(OptimizerKind kind) => kind is OptimizerKind.AdamW8bit or OptimizerKind.PagedAdamW8bit or OptimizerKind.Galore8bit;

    /// <summary>Whether <paramref name="kind"/> projects 2-D gradients into a GaLore subspace.</summary>
    public static bool IsGaLore(OptimizerKind kind) => kind is OptimizerKind.Galore or OptimizerKind.Galore8bit or OptimizerKind.NaturalGalore;

    /// <summary>Creates the optimizer named <paramref name="name"/> (one of <see cref="Names"/>); see <see cref="Create(OptimizerKind, IReadOnlyList{ParamGroup}, OptimizerBuildOptions?)"/>.</summary>
    /// <exception cref="OptimizerConfigException">Unknown name, or any reason the kind overload gives.</exception>
    public static Optimizer Create(string name, IReadOnlyList<ParamGroup> groups, OptimizerBuildOptions? options = null)
    {
        OptimizerKind kind;
        try
        {
            kind = Knob.ParseOptimizer(name ?? "");
        }
        catch (PlanningException)
        {
            throw new OptimizerConfigException($"unknown optimizer '{name}'; expected one of: {string.Join(", ", Names)}");
        }
        return Create(kind, groups, options);
    }

    /// <summary>Creates the optimizer <paramref name="kind"/> over <paramref name="groups"/>.</summary>
    /// <remarks>
    /// <c>adamw</c>/<c>paged-adamw</c>: PyTorch AdamW (decay before the step), dense states.
    /// <c>adamw-8bit</c>/<c>paged-adamw-8bit</c>: bitsandbytes AdamW8bit (decay after the step, 8-bit blockwise
    /// moments for tensors of ≥ 4096 elements). <c>galore</c>, <c>galore-8bit</c>, <c>natural-galore</c>: groups with
    /// <see cref="ParamGroupOptions.GaLore"/> update their 2-D parameters in the GaLore subspace; every other
    /// parameter gets galore-torch's plain AdamW (decay after the step).
    /// </remarks>
    /// <exception cref="OptimizerConfigException">Duplicate parameter names, GaLore options on a non-GaLore optimizer
    /// (or none on a GaLore one), rank larger than a matrix.</exception>
    public static Optimizer Create(OptimizerKind kind, IReadOnlyList<ParamGroup> groups, OptimizerBuildOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(groups);
        options ??= new OptimizerBuildOptions();
        string name = Knob.Name(kind);
        if (groups.Count == 0)
            throw new OptimizerConfigException($"optimizer '{name}': no parameter groups");
        CheckUniqueNames(groups);

        bool eightBit = IsEightBit(kind);
        bool paged = IsPaged(kind);
        bool galore = IsGaLore(kind);
        bool natural = kind == OptimizerKind.NaturalGalore;
        CheckGaLoreGroups(kind, groups, galore);

        IOptimizerStateCodec codec = eightBit ? new Blockwise8BitStateCodec(options.BlockSize) : new DenseStateCodec(options.StateDType);
        IStateAllocator allocator = paged
            ? new PagedStateAllocator(options.Pager ?? new PagerOptions(64L << 20, groups[0].Parameters[0].Param.device))
            : new DeviceStateAllocator();
        var rules = new List<IParameterRule>();
        try
        {
            foreach (var group in groups)
                foreach (var (pname, p) in group.Parameters)
                {
                    var g = group.Options.GaLore;
                    if (galore && g is not null && p.dim() == 2)
                        rules.Add(new GaLoreRule(pname, p, group, g, codec, allocator, natural));
                    else
                        rules.Add(new AdamWRule(pname, p, group, codec, allocator, decayAfterStep: eightBit || galore));
                }
        }
        catch
        {
            foreach (var r in rules) r.Dispose();
            allocator.Dispose();
            throw;
        }
        return new Optimizer(name, groups, rules, allocator);
    }

    private static void CheckUniqueNames(IReadOnlyList<ParamGroup> groups)
    {
        var seen = new HashSet<string>(StringComparer.Ordinal);
        var handles = new HashSet<IntPtr>();
        foreach (var g in groups)
            foreach (var (n, p) in g.Parameters)
            {
                if (!seen.Add(n))
                    throw new OptimizerConfigException($"parameter '{n}' appears twice (group '{g.Name}'); parameter names key the optimizer state and must be unique");
                if (!handles.Add(p.Handle))
                    throw new OptimizerConfigException($"parameter '{n}' (group '{g.Name}') is the same tensor as an earlier parameter");
            }
    }

    private static void CheckGaLoreGroups(OptimizerKind kind, IReadOnlyList<ParamGroup> groups, bool galore)
    {
        string name = Knob.Name(kind);
        var withGaLore = groups.Where(g => g.Options.GaLore is not null).ToList();
        if (galore && withGaLore.Count == 0)
            throw new OptimizerConfigException($"optimizer '{name}': no parameter group has GaLore options (rank, update_proj_gap, scale)");
        if (!galore && withGaLore.Count > 0)
            throw new OptimizerConfigException($"optimizer '{name}': parameter group '{withGaLore[0].Name}' has GaLore options, which only the galore optimizers use");
        if (kind != OptimizerKind.NaturalGalore)
            foreach (var g in withGaLore.Where(g => g.Options.GaLore!.Natural is not null))
                throw new OptimizerConfigException($"optimizer '{name}': parameter group '{g.Name}' has Natural GaLore options; use 'natural-galore'");
    }
}
