using QuantPeft.Memory.Paging;
using QuantPeft.Optimizers.GaLore;
using QuantPeft.Optimizers.State;

namespace QuantPeft.Optimizers;

/// <summary>Builds an <see cref="Optimizer"/> by name: the one place a name becomes rules, codec and allocator.</summary>
public static class OptimizerFactory
{
    /// <summary>The names <see cref="Create"/> accepts.</summary>
    public static IReadOnlyList<string> Names { get; } =
        ["adamw", "adamw-8bit", "paged-adamw", "paged-adamw-8bit", "galore", "galore-8bit", "natural-galore"];

    /// <summary>Creates the optimizer <paramref name="name"/> over <paramref name="groups"/>.</summary>
    /// <remarks>
    /// <c>adamw</c>/<c>paged-adamw</c>: PyTorch AdamW (decay before the step), dense states.
    /// <c>adamw-8bit</c>/<c>paged-adamw-8bit</c>: bitsandbytes AdamW8bit (decay after the step, 8-bit blockwise
    /// moments for tensors of ≥ 4096 elements). <c>galore</c>, <c>galore-8bit</c>, <c>natural-galore</c>: groups with
    /// <see cref="ParamGroupOptions.GaLore"/> update their 2-D parameters in the GaLore subspace; every other
    /// parameter gets galore-torch's plain AdamW (decay after the step).
    /// </remarks>
    /// <exception cref="OptimizerConfigException">Unknown name, duplicate parameter names, GaLore options on a
    /// non-GaLore optimizer (or none on a GaLore one), rank larger than a matrix.</exception>
    public static Optimizer Create(string name, IReadOnlyList<ParamGroup> groups, OptimizerBuildOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(groups);
        options ??= new OptimizerBuildOptions();
        string kind = (name ?? "").Trim().ToLowerInvariant();
        if (!Names.Contains(kind))
            throw new OptimizerConfigException($"unknown optimizer '{name}'; expected one of: {string.Join(", ", Names)}");
        if (groups.Count == 0)
            throw new OptimizerConfigException($"optimizer '{kind}': no parameter groups");
        CheckUniqueNames(groups);

        bool eightBit = kind.EndsWith("-8bit", StringComparison.Ordinal);
        bool paged = kind.StartsWith("paged-", StringComparison.Ordinal);
        bool galore = kind.Contains("galore", StringComparison.Ordinal);
        bool natural = kind == "natural-galore";
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
        return new Optimizer(kind, groups, rules, allocator);
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

    private static void CheckGaLoreGroups(string kind, IReadOnlyList<ParamGroup> groups, bool galore)
    {
        var withGaLore = groups.Where(g => g.Options.GaLore is not null).ToList();
        if (galore && withGaLore.Count == 0)
            throw new OptimizerConfigException($"optimizer '{kind}': no parameter group has GaLore options (rank, update_proj_gap, scale)");
        if (!galore && withGaLore.Count > 0)
            throw new OptimizerConfigException($"optimizer '{kind}': parameter group '{withGaLore[0].Name}' has GaLore options, which only the galore optimizers use");
        if (kind != "natural-galore")
            foreach (var g in withGaLore.Where(g => g.Options.GaLore!.Natural is not null))
                throw new OptimizerConfigException($"optimizer '{kind}': parameter group '{g.Name}' has Natural GaLore options; use 'natural-galore'");
    }
}
