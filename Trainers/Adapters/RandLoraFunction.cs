using QuantPeft.Quant.Torch;
using TorchSharp;
using static TorchSharp.torch;

namespace QuantPeft.Trainers.Adapters;

/// <summary>
/// One RandLoRA update <c>y = s · ΔW x</c>, ΔW = P Q (or its transpose), without a dense ΔW and without keeping the scaled
/// bases for backward. Q [r·n, min] is the shared A scaled by the trained Λ and Γ (row k·n + i is λ[k, i] · A[k] ⊙ γ[i]);
/// P [max, n·r] is the leading slice of the shared B. When d_in ≤ d_out, y = s · P Q x and only the input is kept; when
/// d_in &gt; d_out, y = s · Qᵀ Pᵀ x and only Pᵀ x (n·r values a token) is kept. Q is rebuilt in backward (a transient
/// r·n × min product in each pass). Arguments to <c>apply</c>: input (in the bases' dtype), λ [r, n], γ [n, min],
/// A [r, 1, ≥ min], B [≥ max, ≥ n, r], then d_in, d_out and s.
/// </summary>
internal sealed class RandLoraFunction : torch.autograd.SingleTensorFunction<RandLoraFunction>
{
    /// <inheritdoc />
    public override string Name => nameof(RandLoraFunction);

    /// <inheritdoc />
    public override Tensor forward(torch.autograd.AutogradContext ctx, params object[] vars)
    {
        var (x, lambda, gamma, a, b) = ((Tensor)vars[0], (Tensor)vars[1], (Tensor)vars[2], (Tensor)vars[3], (Tensor)vars[4]);
        long inFeatures = (long)vars[5], outFeatures = (long)vars[6];
        double scaling = (double)vars[7];
        bool inputIsMin = inFeatures <= outFeatures;
        var x2 = x.reshape(-1, inFeatures);
        Tensor kept, y;
        using (var scope = torch.NewDisposeScope())
        {
            var q = Q(lambda, gamma, a);
            var p = P(b, Math.Max(inFeatures, outFeatures), lambda.shape[1]);
            if (inputIsMin)
            {
                kept = x2;
                y = x2.matmul(q.t()).matmul(p.t());
            }
            else
            {
                kept = x2.matmul(p).MoveToOuterDisposeScope();
                y = kept.matmul(q);
            }
            using (Scalar s = scaling.ToScalar()) y.mul_(s);
            y = y.view([.. x.shape[..^1], outFeatures]).MoveToOuterDisposeScope();
        }
        ctx.save_for_backward([kept, lambda, gamma, a, b]);
        ctx.save_data("in", inFeatures);
        ctx.save_data("out", outFeatures);
        ctx.save_data("scaling", scaling);
        ctx.save_data("input_grad", x.requires_grad);
        return y;
    }

    /// <inheritdoc />
    public override List<Tensor> backward(torch.autograd.AutogradContext ctx, Tensor gradOutput)
    {
        var saved = ctx.get_saved_variables();
        Tensor kept = saved[0], lambda = saved[1], gamma = saved[2], a = saved[3], b = saved[4];
        long inFeatures = (long)ctx.get_data("in"), outFeatures = (long)ctx.get_data("out");
        double scaling = (double)ctx.get_data("scaling");
        bool wantInput = (bool)ctx.get_data("input_grad");
        BackwardHandles.ReleaseEarlier();

        Tensor? gradInput;
        Tensor gradLambda, gradGamma;
        using (var scope = torch.NewDisposeScope())
        {
            long r = lambda.shape[0], n = lambda.shape[1], min = gamma.shape[1];
            Tensor g;
            using (Scalar s = scaling.ToScalar()) g = gradOutput.reshape(-1, outFeatures).to(lambda.dtype).mul(s);
            var sa = a.narrow(2, 0, min);
            var q = Q(lambda, gamma, a);
            var p = P(b, Math.Max(inFeatures, outFeatures), n);
            Tensor gradQ, gradHidden;
            if (inFeatures <= outFeatures)
            {
                gradHidden = g.matmul(p);                  // [T, r·n]
                gradQ = gradHidden.t().matmul(kept);       // kept: the input [T, min]
                gradInput = wantInput ? gradHidden.matmul(q) : null;
            }
            else
            {
                gradQ = kept.t().matmul(g);                // kept: Pᵀx [T, n·r]
                gradInput = wantInput ? g.matmul(q.t()).matmul(p.t()) : null;
            }
            var gq = gradQ.view(r, n, min);
            gradLambda = gq.mul(sa).mul(gamma.unsqueeze(0)).sum([2]).MoveToOuterDisposeScope();
            gradGamma = gq.mul(sa).mul(lambda.unsqueeze(2)).sum([0]).MoveToOuterDisposeScope();
            gradInput = gradInput?.view([.. gradOutput.shape[..^1], inFeatures]).MoveToOuterDisposeScope();
        }
        gradOutput.Dispose();   // see BackwardHandles
        return BackwardHandles.Returning([gradInput!, gradLambda, gradGamma, null!, null!, null!, null!, null!]);
    }

    /// <summary>Q [r·n, min]: row k·n + i is λ[k, i] · A[k, :min] ⊙ γ[i] (PEFT's scaled A, flattened over rank then base).</summary>
    public static Tensor Q(Tensor lambda, Tensor gamma, Tensor a)
    {
        long r = lambda.shape[0], n = lambda.shape[1], min = gamma.shape[1];
        return lambda.unsqueeze(2).mul(a.narrow(2, 0, min)).mul(gamma.unsqueeze(0)).view(r * n, min);
    }

    /// <summary>P [max, n·r]: the leading rows of B and its first n bases, column i·r + k being B[:, i, k] (a strided view, no copy).</summary>
    public static Tensor P(Tensor b, long max, long n) =>
        b.view(b.shape[0], b.shape[1] * b.shape[2]).narrow(0, 0, max).narrow(1, 0, n * b.shape[2]);
}
