using QuantPeft.Optimizers.State;
using TorchSharp.Modules;
using TorchSharp;
using static TorchSharp.torch;

namespace QuantPeft.Optimizers.GaLore;

/// <summary>
/// GaLore (optionally Natural GaLore) on one 2-D parameter: Adam in the projected space, update projected
/// back and scaled by α, weight decay after the step.
/// </summary>
/// <remarks>
/// Per update, with t the parameter's step count before the increment (galore-torch order):
/// refresh the projector when t mod T = 0; R = project(G); t ← t+1; [Natural: R ← F⁻¹R];
/// M, V ← Adam moments of R (never reset on refresh); N = M̂/(√V̂ + eps);
/// W ← W − lr·α·back(N); then W ← W·(1 − lr·wd). With an 8-bit codec the moments are 8-bit blockwise of
/// R's shape, and an element with a non-finite R gets M = V = 0 and no update (bnb's kernel on the
/// low-rank "parameter" that galore-torch's 8-bit variant runs).
/// </remarks>
internal sealed class GaLoreRule : IParameterRule
{
    private readonly GaLoreOptions _options;
    private readonly GaLoreProjector _projector;
    private readonly NaturalGradientTransform? _natural;
    private readonly IMomentState _m;
    private readonly IMomentState _v;
    private readonly bool _zeroOnNonFinite;

    public GaLoreRule(string name, Parameter param, ParamGroup group, GaLoreOptions options, IOptimizerStateCodec codec,
        IStateAllocator allocator, bool natural)
    {
        if (param.dim() != 2)
            throw new OptimizerConfigException($"parameter '{name}': GaLore needs a 2-D weight, found shape [{string.Join(",", param.shape)}]");
        long rows = param.shape[0], cols = param.shape[1];
        if (options.Rank > Math.Min(rows, cols))
            throw new OptimizerConfigException(
                $"parameter '{name}' (group '{group.Name}'): galore rank {options.Rank} exceeds min(m, n) = {Math.Min(rows, cols)} of its [{rows},{cols}] shape");
        Name = name;
        Param = param;
        Group = group;
        _options = options;
        _zeroOnNonFinite = codec.ZeroMomentsOnNonFiniteGradient;
        _projector = new GaLoreProjector(options.ProjectionType, options.Rank, rows, cols, param.dtype, param.device, allocator);
        var shape = _projector.ProjectedShape;
        _m = codec.Create("exp_avg", shape, signed: true, param.device, allocator);
        _v = codec.Create("exp_avg_sq", shape, signed: false, param.device, allocator);
        if (natural)
            _natural = new NaturalGradientTransform(options.Natural ?? new NaturalGaLoreOptions(), shape[0] * shape[1], param.device, allocator);
        StateTensors = [.. _projector.Tensors, .. _m.Tensors, .. _v.Tensors, .. (_natural is null ? [] : new[] { _natural.History })];
    }

    public string Name { get; }
    public Parameter Param { get; }
    public ParamGroup Group { get; }
    public long Step { get; set; }
    public IReadOnlyList<IStateTensor> StateTensors { get; }

    /// <summary>The projector (for tests and diagnostics).</summary>
    public GaLoreProjector Projector => _projector;

    public void Update(Tensor grad)
    {
        using var scope = NewDisposeScope();
        var o = Group.Options;
        double lr = Group.Lr;
        // Peak f32 temporaries: the full-size gradient g, then the full-size parameter copy and back-projected
        // update (8 bytes per element of the matrix); g goes once it is projected, the small moments once encoded.
        var g = grad.to(ScalarType.Float32);
        if (Step % _options.UpdateProjGap == 0) _projector.Refresh(g);
        var r = _projector.Project(g);
        if (!ReferenceEquals(g, grad)) g.Dispose(); // a gradient already in f32 is not ours to free
        long t = ++Step;
        if (_natural is not null) r = _natural.Apply(r.reshape(-1), t).view_as(r);
        Tensor m = _m.Decode(), v = _v.Decode();
        AdamMath.Moments(r, m, v, o.Beta1, o.Beta2);
        Tensor? finite = _zeroOnNonFinite ? AdamMath.FiniteMaskOrNull(r) : null;
        if (finite is not null) AdamMath.ZeroWhereNotFinite(finite, m, v);
        _m.Encode(m);
        _v.Encode(v);
        var n = AdamMath.DirectionInPlace(m, v, t, o.Beta1, o.Beta2, o.Eps);
        if (finite is not null)
        {
            using var bad = finite.logical_not();
            using Scalar zero = 0f.ToScalar();
            n.masked_fill_(bad, zero);
        }
        var p = Param.detach().to(ScalarType.Float32, copy: true);
        AdamMath.AddScaled(p, _projector.ProjectBack(n), -lr * _options.Scale);
        if (o.WeightDecay > 0) AdamMath.Scale(p, 1 - lr * o.WeightDecay);
        Param.detach().copy_(p);
    }

    public void Dispose()
    {
        foreach (var t in StateTensors) t.Dispose();
    }
}
