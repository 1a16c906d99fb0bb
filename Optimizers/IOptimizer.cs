using TorchSharp.Modules;
using static TorchSharp.torch;

namespace QuantPeft.Optimizers;

/// <summary>
/// An optimizer over TorchSharp parameters. One implementation (<see cref="Optimizer"/>) composes the
/// per-parameter update rules, the state codec and the state allocator; this interface is what trainers
/// and the optimizer-in-backward mechanism depend on.
/// </summary>
public interface IOptimizer : IDisposable
{
    /// <summary>The factory name (<c>adamw</c>, <c>galore-8bit</c>, ...).</summary>
    string Kind { get; }

    /// <summary>The parameter groups, in update order.</summary>
    IReadOnlyList<ParamGroup> Groups { get; }

    /// <summary>How many times <see cref="Step"/> has run.</summary>
    long StepCount { get; }

    /// <summary>Updates every parameter that has a gradient (parameters without one are skipped).</summary>
    void Step();

    /// <summary>Updates one parameter with <paramref name="grad"/> now (used by optimizer-in-backward).</summary>
    /// <exception cref="ArgumentException"><paramref name="param"/> is not in this optimizer.</exception>
    void StepParameter(Parameter param, Tensor grad);

    /// <summary>
    /// Clears every parameter's gradient: drops it (freeing the memory; the default, as in PyTorch), or with
    /// <paramref name="setToNone"/> false zeroes it in place so the next backward accumulates into the same storage.
    /// </summary>
    void ZeroGrad(bool setToNone = true);

    /// <summary>Copies the whole state (tensors + scalars) out; the caller owns the result.</summary>
    OptimizerStateDict StateDict();

    /// <summary>Restores a state produced by <see cref="StateDict"/> of an optimizer of the same kind and parameters.</summary>
    /// <exception cref="OptimizerConfigException">A tensor or scalar is missing or has the wrong shape.</exception>
    void LoadStateDict(OptimizerStateDict state);

    /// <summary>The bytes of state held now, counted from the real tensors.</summary>
    StateBytes StateBytes { get; }
}
