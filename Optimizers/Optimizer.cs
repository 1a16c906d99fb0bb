using TorchSharp.Modules;
using QuantPeft.Optimizers.State;
using static TorchSharp.torch;

namespace QuantPeft.Optimizers;

/// <summary>
/// The optimizer: a list of per-parameter update rules (AdamW, GaLore, Natural GaLore), each storing its
/// moments through a codec, all state tensors created by one allocator (device or paged). Build it with
/// <see cref="OptimizerFactory"/>.
/// </summary>
public sealed class Optimizer : IOptimizer
{
    private readonly List<IParameterRule> _rules;
    private readonly Dictionary<IntPtr, IParameterRule> _byHandle = [];
    private readonly IStateAllocator _allocator;

    internal Optimizer(string kind, IReadOnlyList<ParamGroup> groups, IReadOnlyList<IParameterRule> rules, IStateAllocator allocator)
    {
        Kind = kind;
        Groups = groups;
        _rules = [.. rules];
        _allocator = allocator;
        foreach (var r in _rules) _byHandle[r.Param.Handle] = r;
    }

    /// <inheritdoc />
    public string Kind { get; }

    /// <inheritdoc />
    public IReadOnlyList<ParamGroup> Groups { get; }

    /// <inheritdoc />
    public long StepCount { get; private set; }

    /// <summary>The allocator that holds the state (a paged one exposes residency statistics).</summary>
    public IStateAllocator Allocator => _allocator;

    /// <inheritdoc />
    public void Step()
    {
        using var noGrad = no_grad();
        var withGrad = new List<(IParameterRule Rule, Tensor Grad)>();
        using var scope = NewDisposeScope();
        foreach (var rule in _rules)
        {
            var grad = rule.Param.grad;
            if (grad is not null) withGrad.Add((rule, grad));
        }
        for (int i = 0; i < withGrad.Count; i++)
        {
            using var lease = _allocator.Acquire(withGrad[i].Rule.StateTensors);
            // Start the next parameter's pages moving while this one computes.
            if (i + 1 < withGrad.Count) _allocator.Prefetch(withGrad[i + 1].Rule.StateTensors);
            withGrad[i].Rule.Update(withGrad[i].Grad);
        }
        StepCount++;
    }

    /// <inheritdoc />
    public void StepParameter(Parameter param, Tensor grad)
    {
        if (!_byHandle.TryGetValue(param.Handle, out var rule))
            throw new ArgumentException("the parameter is not managed by this optimizer", nameof(param));
        using var noGrad = no_grad();
        using var lease = _allocator.Acquire(rule.StateTensors);
        rule.Update(grad);
    }

    /// <inheritdoc />
    public void ZeroGrad(bool setToNone = true)
    {
        if (setToNone)
        {
            foreach (var rule in _rules) rule.Param.grad = null;
            return;
        }
        using var noGrad = no_grad();
        using var scope = NewDisposeScope();   // each grad read is a new handle
        foreach (var rule in _rules) rule.Param.grad?.zero_();
    }

    /// <inheritdoc />
    public OptimizerStateDict StateDict()
    {
        var dict = new OptimizerStateDict();
        dict.SetScalar("optimizer.step", StepCount);
        foreach (var g in Groups) dict.SetScalar($"group.{g.Name}.lr", g.Lr);
        foreach (var rule in _rules)
        {
            dict.SetScalar($"{rule.Name}.step", rule.Step);
            using var lease = _allocator.Acquire(rule.StateTensors);
            foreach (var t in rule.StateTensors)
                dict.AddTensor($"{rule.Name}.{t.Name}", t.Value.to(CPU, copy: true));
        }
        return dict;
    }

    /// <inheritdoc />
    public void LoadStateDict(OptimizerStateDict state)
    {
        ArgumentNullException.ThrowIfNull(state);
        using var noGrad = no_grad();
        foreach (var rule in _rules)
        {
            using var lease = _allocator.Acquire(rule.StateTensors);
            foreach (var t in rule.StateTensors)
            {
                string key = $"{rule.Name}.{t.Name}";
                if (!state.TryGetTensor(key, out var stored))
                    throw new OptimizerConfigException($"optimizer state: tensor '{key}' is missing");
                if (!stored.shape.SequenceEqual(t.Value.shape) || stored.dtype != t.Value.dtype)
                    throw new OptimizerConfigException(
                        $"optimizer state: tensor '{key}' has shape [{string.Join(",", stored.shape)}] {stored.dtype}, " +
                        $"expected [{string.Join(",", t.Value.shape)}] {t.Value.dtype}");
                t.Value.copy_(stored);
            }
            rule.Step = (long)state.GetScalar($"{rule.Name}.step");
        }
        foreach (var g in Groups) g.Lr = state.GetScalar($"group.{g.Name}.lr");
        StepCount = (long)state.GetScalar("optimizer.step");
    }

    /// <inheritdoc />
    public StateBytes StateBytes => _allocator.Measure(_rules.SelectMany(r => r.StateTensors));

    /// <summary>Every state tensor of every parameter (moments, codes, block statistics, projectors), in rule order.</summary>
    /// <remarks>A paged tensor's <see cref="IStateTensor.Value"/> is its device copy, valid only under an <see cref="Allocator"/> lease.</remarks>
    public IEnumerable<IStateTensor> StateTensors => _rules.SelectMany(r => r.StateTensors);

    /// <summary>Bytes a codec-stored state would take by formula, for comparison with <see cref="StateBytes"/>.</summary>
    internal IEnumerable<IParameterRule> Rules => _rules;

    /// <inheritdoc />
    public void Dispose()
    {
        foreach (var r in _rules) r.Dispose();
        _allocator.Dispose();
    }
}
