using QuantPeft.Memory.Probes;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace QuantPeft.Optimizers.InBackward;

/// <summary>
/// Optimizer-in-backward (layer-wise updates): each parameter is updated the moment its gradient is
/// complete during <c>backward()</c>, and the gradient is dropped right away, so at most one layer's
/// gradients exist at a time instead of the whole model's.
/// </summary>
/// <remarks>
/// TorchSharp has no <c>register_post_accumulate_grad_hook</c> (nor <c>Tensor.register_hook</c>), so the hook is
/// a custom autograd function placed where the weight is used: <c>linear(x, hook.Use(w))</c>. Its forward is the
/// identity (a detached alias of w, no copy); autograd calls its backward once all of w's uses have
/// contributed, with w's full gradient. The backward runs the optimizer's update for w immediately and
/// returns no gradient, so nothing accumulates into <c>w.grad</c>. Modifying w there is safe because every
/// node that saved w has already run (they are the ones that produced the gradient).
/// <para>Consequences: gradient accumulation over micro-batches is impossible (there is no .grad to
/// accumulate into) and global gradient-norm clipping is impossible (the norm is known only after every
/// parameter was already updated), so both are rejected up front. Each weight must pass through
/// <see cref="Use"/> exactly once per forward.</para>
/// </remarks>
public sealed class OptimizerInBackward
{
    private readonly IOptimizer _optimizer;

    /// <summary>Wraps <paramref name="optimizer"/>; the trainer passes its accumulation and clipping settings.</summary>
    /// <exception cref="OptimizerConfigException">Accumulation &gt; 1 or clipping requested.</exception>
    public OptimizerInBackward(IOptimizer optimizer, int gradientAccumulationSteps = 1, double? maxGradNorm = null)
    {
        ArgumentNullException.ThrowIfNull(optimizer);
        if (gradientAccumulationSteps != 1)
            throw new OptimizerConfigException(
                $"optimizer-in-backward: gradient_accumulation_steps must be 1, found {gradientAccumulationSteps}; " +
                "each parameter is updated and its gradient freed during backward, so gradients cannot be accumulated across micro-batches");
        if (maxGradNorm is not null)
            throw new OptimizerConfigException(
                $"optimizer-in-backward: global gradient clipping (max_grad_norm = {maxGradNorm}) is not possible; " +
                "the global norm is only known after every parameter has already been updated. Disable clipping or the layer-wise mode");
        _optimizer = optimizer;
    }

    /// <summary>How many parameter updates ran inside backward passes.</summary>
    public long UpdatesApplied { get; private set; }

    /// <summary>Returns the tensor to use in place of <paramref name="param"/> in the forward pass.</summary>
    public Tensor Use(Parameter param) => StepInBackwardFunction.apply(param, new StepTarget(this, param));

    internal void Apply(Parameter param, Tensor grad)
    {
        _optimizer.StepParameter(param, grad);
        UpdatesApplied++;
        // On the CPU each update's f32 copies and the gradient it consumed are freed into glibc's arenas between the
        // activation gradients still alive, which keep those pages resident: 8-bit GaLore layer-wise on the TinyLlama
        // shape ended its first backward with ≈ 1 GB of them (perf/results/bench-memory-cpu.md). Past a bound they go
        // back to the kernel; below it, reusing them is cheaper than faulting new pages in.
        if (QuantPeft.Quant.Torch.HostKernels.For(param.device)) NativeHeap.TrimIfRetainedAbove(RetainedHeapLimit);
    }

    /// <summary>Freed C-heap bytes a CPU backward may keep resident before the next update returns them (256 MiB).</summary>
    public const long RetainedHeapLimit = 256L << 20;

    internal sealed class StepTarget(OptimizerInBackward owner, Parameter param)
    {
        public OptimizerInBackward Owner { get; } = owner;
        public Parameter Param { get; } = param;
    }
}
