using TorchSharp.Modules;
using QuantPeft.Optimizers.State;
using static TorchSharp.torch;

namespace QuantPeft.Optimizers;

/// <summary>
/// AdamW on one parameter: bias-corrected moments stored by a codec, decoupled weight decay.
/// </summary>
/// <remarks>
/// <para>Weight decay order: PyTorch's AdamW multiplies p by (1 − lr·wd) <i>before</i> the Adam step;
/// bitsandbytes' kernels and galore-torch apply it <i>after</i>. The difference is O(lr²·wd);
/// <c>decayAfterStep</c> picks the convention of the optimizer being reproduced.</para>
/// <para>With a codec that sets <see cref="IOptimizerStateCodec.ZeroMomentsOnNonFiniteGradient"/>, an element
/// whose gradient is NaN/±Inf gets m = v = 0 and its parameter value is left unchanged (bnb's rule).</para>
/// </remarks>
internal sealed class AdamWRule : IParameterRule
{
    private readonly IMomentState _m;
    private readonly IMomentState _v;
    private readonly bool _decayAfterStep;
    private readonly bool _zeroOnNonFinite;

    public AdamWRule(string name, Parameter param, ParamGroup group, IOptimizerStateCodec codec,
        IStateAllocator allocator, bool decayAfterStep)
    {
        Name = name;
        Param = param;
        Group = group;
        _decayAfterStep = decayAfterStep;
        _zeroOnNonFinite = codec.ZeroMomentsOnNonFiniteGradient;
        _m = codec.Create("exp_avg", param.shape, signed: true, param.device, allocator);
        _v = codec.Create("exp_avg_sq", param.shape, signed: false, param.device, allocator);
        StateTensors = [.. _m.Tensors, .. _v.Tensors];
    }

    public string Name { get; }
    public Parameter Param { get; }
    public ParamGroup Group { get; }
    public long Step { get; set; }
    public IReadOnlyList<IStateTensor> StateTensors { get; }

    public void Update(Tensor grad)
    {
        using var scope = NewDisposeScope();
        var o = Group.Options;
        double lr = Group.Lr;
        long t = ++Step;
        // Peak f32 temporaries: g, m and v (12 bytes per element); g goes before the direction, v after it
        // (docs/planner.md, "Optimizer step temporaries").
        var g = grad.to(ScalarType.Float32);
        Tensor m = _m.Decode(), v = _v.Decode();
        AdamMath.Moments(g, m, v, o.Beta1, o.Beta2);
        // The mask exists only when g has a NaN or ±Inf, so the masked updates below cost nothing in the common case.
        Tensor? finite = _zeroOnNonFinite ? AdamMath.FiniteMaskOrNull(g) : null;
        if (finite is not null) AdamMath.ZeroWhereNotFinite(finite, m, v);
        if (!ReferenceEquals(g, grad)) g.Dispose(); // a gradient already in f32 is not ours to free
        _m.Encode(m);
        _v.Encode(v);
        var direction = AdamMath.DirectionInPlace(m, v, t, o.Beta1, o.Beta2, o.Eps);
        v.Dispose();
        var p = Param.detach().to(ScalarType.Float32, copy: true);
        double decay = 1 - lr * o.WeightDecay;
        if (o.WeightDecay > 0 && !_decayAfterStep) AdamMath.Scale(p, decay);
        AdamMath.AddScaled(p, direction, -lr);
        if (o.WeightDecay > 0 && _decayAfterStep) AdamMath.Scale(p, decay);
        if (finite is not null)
        {
            // Where the gradient was not finite the parameter keeps its value (only those elements are copied).
            using var bad = finite.logical_not();
            using var kept = Param.detach().masked_select(bad).to(ScalarType.Float32);
            p.masked_scatter_(bad, kept);
        }
        Param.detach().copy_(p);
    }

    public void Dispose()
    {
        foreach (var t in StateTensors) t.Dispose();
    }
}
