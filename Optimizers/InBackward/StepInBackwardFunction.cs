using static TorchSharp.torch;
using static TorchSharp.torch.autograd;

namespace QuantPeft.Optimizers.InBackward;

/// <summary>
/// The autograd node of <see cref="OptimizerInBackward"/>: identity forward, backward = "update this
/// parameter now, pass no gradient on". Deriving from TorchSharp's Function base is how TorchSharp
/// defines custom autograd functions.
/// </summary>
internal sealed class StepInBackwardFunction : SingleTensorFunction<StepInBackwardFunction>
{
    public override string Name => "StepInBackward";

    public override Tensor forward(AutogradContext ctx, params object[] vars)
    {
        var target = (OptimizerInBackward.StepTarget)vars[1];
        ctx.save_data("target", target);
        return target.Param.detach();
    }

    public override List<Tensor> backward(AutogradContext ctx, Tensor grad_output)
    {
        var target = (OptimizerInBackward.StepTarget)ctx.get_data("target");
        target.Owner.Apply(target.Param, grad_output);
        // TorchSharp wraps the incoming gradient in a handle of its own (attached to the caller's dispose
        // scope, if any). Releasing it here is the point of the whole mechanism: otherwise every layer's
        // gradient would stay alive until the scope around backward() ends. The engine keeps its own reference
        // for as long as it needs one.
        grad_output.Dispose();
        // No gradient for the parameter (nothing accumulates into .grad) and none for the non-tensor input.
        return [null!, null!];
    }
}
