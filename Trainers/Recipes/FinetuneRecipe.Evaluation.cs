using QuantPeft.Trainers.Loss;
using static TorchSharp.torch;

namespace QuantPeft.Trainers.Recipes;

// Evaluation: the loss over the held-out rows (or pairs), and exact match by greedy decoding.
public sealed partial class FinetuneRecipe
{
    /// <summary>Eval loss and perplexity over all eval rows, plus exact match on up to <see cref="FinetuneOptions.ExactMatchRecords"/> records.</summary>
    public EvalResult Evaluate(bool exactMatch = true)
    {
        var model = Model;
        model.eval();
        if (_preference is not null)
        {
            var (preferenceLoss, metrics) = _preference.Evaluate(Math.Max(_options.MicroBatchSize, 16));
            SampleMemory();
            return new EvalResult(preferenceLoss, Math.Exp(preferenceLoss), null) { Preference = metrics };
        }
        var data = Data!;
        double sum = 0, count = 0;
        using (no_grad())
        {
            // Rows of the training micro-batch: the evaluation then holds no more than a training step's transients
            // (and no saved activations), so the planned peak covers it. At 32 rows of 256 tokens the f32 loss chunk
            // (1024 × vocab) and the MLP temporaries of one batch outgrew the whole planned step of a batch-2 run.
            foreach (var batch in data.EvalBatches(_options.MicroBatchSize))
            {
                using var scope = NewDisposeScope();
                var (ids, labels) = MicroBatchTensors.Of(batch, model.LmHeadWeight.device);
                int n = batch.TargetCount;
                if (n == 0) continue;
                using var segments = MicroBatchTensors.Segments(batch, model.LmHeadWeight.device);
                sum += ChunkedCrossEntropy.Compute(model.Hidden(ids, segments), model.LmHeadWeight, labels, divisor: 1,
                    finalLogitSoftcap: model.Spec.FinalLogitSoftcap).item<float>();
                count += n;
            }
        }
        double loss = count > 0 ? sum / count : double.NaN;
        double? accuracy = null;
        if (exactMatch && _options.ExactMatchRecords > 0 && data.EvalRecords.Any(r => r.Prompt is not null && r.Completion is not null))
            accuracy = GreedyDecoder.ExactMatch(model, Tokenizer!, data.EvalRecords.Take(_options.ExactMatchRecords).ToList());
        SampleMemory();
        return new EvalResult(loss, Math.Exp(loss), accuracy);
    }
}
