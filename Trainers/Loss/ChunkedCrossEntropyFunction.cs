using TorchSharp;
using static TorchSharp.torch;
using static TorchSharp.torch.autograd;

namespace QuantPeft.Trainers.Loss;

/// <summary>
/// Autograd function behind <see cref="ChunkedCrossEntropy"/>. Inputs: hidden (N, H), weight (V, H),
/// labels (N) int64, then chunk size, ignore index, divisor and the optional final-logit soft-cap as plain values. Forward and backward
/// both walk the rows in chunks, recomputing the chunk's logits, so at most chunk × V float32
/// logits exist at any time; between the passes only hidden, weight, labels and the N per-row
/// log-sum-exp values are kept.
/// </summary>
internal sealed class ChunkedCrossEntropyFunction : SingleTensorFunction<ChunkedCrossEntropyFunction>
{
    public override string Name => nameof(ChunkedCrossEntropyFunction);

    public override Tensor forward(AutogradContext ctx, params object[] vars)
    {
        var hidden = (Tensor)vars[0];
        var weight = (Tensor)vars[1];
        var labels = (Tensor)vars[2];
        int chunk = (int)vars[3];
        long ignoreIndex = (long)vars[4];
        double divisor = (double)vars[5];
        double? softcap = (double)vars[6] > 0 ? (double)vars[6] : null;   // 0: no final-logit soft-cap

        long n = hidden.shape[0];
        // Explicit Scalars, alive for each native call and reused across chunks (implicit ones are freed by the
        // finalizer, which can run mid-call; see Quant/Torch/ScalarOps.cs).
        using Scalar one = 1.0.ToScalar(), divisorScalar = divisor.ToScalar(), ignore = ignoreIndex.ToScalar(), zero = 0L.ToScalar();
        var logSumExp = empty(n, dtype: ScalarType.Float32, device: hidden.device);
        var total = zeros(1, dtype: ScalarType.Float32, device: hidden.device);
        for (long start = 0; start < n; start += chunk)
        {
            using var scope = NewDisposeScope();
            long len = Math.Min(chunk, n - start);
            var logits = ChunkLogits(hidden, weight, start, len, softcap);        // (len, V) f32
            var lse = logits.logsumexp(-1);                                       // (len)
            var (target, valid) = Targets(labels, start, len, ignore, zero);
            var picked = logits.gather(1, target.unsqueeze(1)).squeeze(1);        // (len)
            total.add_(lse.sub(picked).mul_(valid).sum(), one);
            logSumExp.narrow(0, start, len).copy_(lse);
        }
        ctx.save_for_backward([hidden, weight, labels, logSumExp]);
        ctx.save_data("chunk", chunk);
        ctx.save_data("ignore", ignoreIndex);
        ctx.save_data("divisor", divisor);
        ctx.save_data("softcap", softcap ?? 0.0);
        ctx.save_data("hidden_grad", hidden.requires_grad);
        ctx.save_data("weight_grad", weight.requires_grad);   // a frozen LM head needs no V×H gradient
        var loss = total.div(divisorScalar).squeeze(0);
        total.Dispose();
        return loss;
    }

    public override List<Tensor> backward(AutogradContext ctx, Tensor gradOutput)
    {
        var saved = ctx.get_saved_variables();
        Tensor hidden = saved[0], weight = saved[1], labels = saved[2], logSumExp = saved[3];
        int chunk = (int)ctx.get_data("chunk");
        long ignoreIndex = (long)ctx.get_data("ignore");
        double divisor = (double)ctx.get_data("divisor");
        double? softcap = (double)ctx.get_data("softcap") > 0 ? (double)ctx.get_data("softcap") : null;

        bool wantHidden = (bool)ctx.get_data("hidden_grad"), wantWeight = (bool)ctx.get_data("weight_grad");

        long n = hidden.shape[0];
        using Scalar one = 1.0.ToScalar(), minusOne = (-1.0f).ToScalar(), divisorScalar = divisor.ToScalar(), ignore = ignoreIndex.ToScalar(), zero = 0L.ToScalar();
        var gradHidden = wantHidden ? empty_like(hidden) : null;
        var gradWeight = wantWeight ? zeros(weight.shape, dtype: ScalarType.Float32, device: weight.device) : null;
        using (var outer = NewDisposeScope())
        {
            var scale = gradOutput.to_type(ScalarType.Float32).div(divisorScalar);   // d loss / d (row loss)
            for (long start = 0; start < n; start += chunk)
            {
                using var scope = NewDisposeScope();
                long len = Math.Min(chunk, n - start);
                var logits = ChunkLogits(hidden, weight, start, len, softcap);
                // Through a soft-cap the chain rule adds the cap's slope at each (capped) logit.
                var capSlope = softcap is { } cap ? QuantPeft.Trainers.Model.Softcap.Derivative(logits, cap) : null;
                // d(lse − logit[target]) / d logits = softmax − onehot(target)
                var dLogits = logits.sub_(logSumExp.narrow(0, start, len).unsqueeze(1)).exp_();
                var (target, valid) = Targets(labels, start, len, ignore, zero);
                dLogits.scatter_add_(1, target.unsqueeze(1), full([len, 1], minusOne, dtype: ScalarType.Float32, device: logits.device));
                dLogits.mul_(valid.unsqueeze(1)).mul_(scale);
                if (capSlope is not null) dLogits.mul_(capSlope);
                var d = dLogits.to_type(hidden.dtype);                             // (len, V)
                var h = hidden.narrow(0, start, len);                              // (len, H)
                gradHidden?.narrow(0, start, len).copy_(matmul(d, weight));
                // Accumulated in place in f32 from f32 copies of the chunk's (len × V, len × H) operands: a V × H
                // product per chunk (bf16, then its f32 upcast) would add 6·V·H bytes beside the accumulator.
                if (gradWeight is not null) gradWeight.addmm_(d.t().to_type(ScalarType.Float32), h.to_type(ScalarType.Float32));
            }
        }
        if (gradWeight is not null && weight.dtype != ScalarType.Float32)
        {
            var typed = gradWeight.to_type(weight.dtype);
            gradWeight.Dispose();
            gradWeight = typed;
        }
        return [gradHidden!, gradWeight!, null!, null!, null!, null!, null!];   // one entry per forward argument
    }

    // Same rounding as HF: matmul and the final-logit soft-cap in the model dtype, then the upcast.
    private static Tensor ChunkLogits(Tensor hidden, Tensor weight, long start, long len, double? softcap)
    {
        var logits = matmul(hidden.narrow(0, start, len), weight.t());
        if (softcap is { } cap) logits = QuantPeft.Trainers.Model.Softcap.Apply(logits, cap);
        return logits.to_type(ScalarType.Float32);
    }

    private static (Tensor Target, Tensor Valid) Targets(Tensor labels, long start, long len, Scalar ignoreIndex, Scalar zero)
    {
        var lab = labels.narrow(0, start, len);
        var ignored = lab.eq(ignoreIndex);
        return (lab.masked_fill(ignored, zero), ignored.logical_not().to_type(ScalarType.Float32));
    }
}
