using QuantPeft.Trainers.Training;
using QuantPeft.Formats.HuggingFace;
using QuantPeft.Optimizers;
using QuantPeft.Trainers.Data;
using QuantPeft.Trainers.Data.Demo;
using QuantPeft.Trainers.Loss;
using QuantPeft.Trainers.Model;
using QuantPeft.Trainers.Recipes;
using QuantPeft.Trainers.Tokenizers;
using TorchSharp;
using static TorchSharp.torch;

namespace QuantPeft.Trainers.Demo;

/// <summary>Settings of a demo pre-training run; the defaults reproduce the committed demo model.</summary>
/// <param name="Seed">Seeds the corpus, the initial weights and the batch order.</param>
/// <param name="Steps">Optimizer steps.</param>
/// <param name="BatchSize">Rows per step.</param>
/// <param name="SequenceLength">Tokens per row (packed).</param>
/// <param name="PeakLr">Peak learning rate (cosine schedule, 5 % warm-up).</param>
/// <param name="CorpusBytes">Size of the generated corpus.</param>
/// <param name="Device">Where the model trains (<c>cpu</c>, <c>cuda:N</c>); the committed model was trained on the CPU, and only the CPU reproduces it bit for bit.</param>
public sealed record DemoPretrainOptions(long Seed = 1234, int Steps = 400, int BatchSize = 16, int SequenceLength = 64,
    double PeakLr = 3e-3, long CorpusBytes = 1_500_000, string Device = "cpu");

/// <summary>
/// The built-in demo model: a 4-layer byte-level Llama of about 0.9M parameters, pre-trained by
/// <see cref="Pretrain"/> on <see cref="DemoPretrainCorpus"/>. It is small enough to commit and to
/// fine-tune on two CPU cores in a couple of minutes, and it has never seen the fine-tuning task.
/// </summary>
public static class DemoModel
{
    /// <summary>The folder name under the application base directory where the committed model is copied.</summary>
    public const string FolderName = "DemoModel";

    /// <summary>The architecture of the demo model.</summary>
    public static ModelSpec Spec { get; } = new()
    {
        ModelType = "llama",
        NumLayers = 4,
        HiddenSize = 128,
        IntermediateSize = 384,
        NumHeads = 4,
        NumKvHeads = 4,
        VocabSize = ByteLevelTokenizer.Size,
        TieWordEmbeddings = true,
        MaxPositionEmbeddings = 256,
        RopeTheta = 10000.0,
        RmsNormEps = 1e-5,
    };

    /// <summary>The demo model folder shipped next to the executable (null when absent).</summary>
    public static string? ShippedFolder()
    {
        string folder = Path.Combine(AppContext.BaseDirectory, FolderName);
        return File.Exists(Path.Combine(folder, ModelFolder.WeightsFileName)) ? folder : null;
    }

    /// <summary>
    /// Pre-trains the demo model from scratch and writes it to <paramref name="outputFolder"/>;
    /// <paramref name="progress"/> receives (step, loss) every few steps. Returns the mean loss of the last 20 steps.
    /// </summary>
    public static double Pretrain(string outputFolder, DemoPretrainOptions options, Action<int, double>? progress = null)
    {
        torch.manual_seed(options.Seed);
        var records = DemoPretrainCorpus.Generate(options.Seed, options.CorpusBytes).ToList();
        var data = TrainingDataset.FromRecords(records, "demo pre-training corpus", ByteLevelTokenizer.Instance,
            new DatasetOptions { SequenceLength = options.SequenceLength, Layout = RowLayout.Packed, Seed = options.Seed });
        // bf16 end to end: about 3x faster than f32 on a CPU, and a few hundred steps at this learning rate stay
        // well above bf16's resolution. Small-normal init (GPT-2's 0.02) keeps tied-head logits near zero at step 0.
        using var model = new CausalLm(Spec, new DecoderOptions { ComputeDType = ScalarType.BFloat16 });
        using (no_grad())
            foreach (var (_, p) in model.named_parameters())
                if (p.dim() == 2) nn.init.normal_(p, 0, 0.02);
        // Weights are drawn on the host generator whatever the device, so every device starts from the same model; the
        // dense bf16 demo model moves whole (it has no 4-bit codes outside its registered parameters).
        var device = torch.device(options.Device);
        bool onHost = device.type == DeviceType.CPU;
        if (!onHost) model.to(device);
        var parameters = model.named_parameters().Select(p => (p.name, p.parameter)).ToList();
        using var optimizer = OptimizerFactory.Create("adamw",
            [new ParamGroup("all", parameters, new ParamGroupOptions(Lr: options.PeakLr, Beta2: 0.95, WeightDecay: 0.01))]);
        var schedule = new WarmupCosineSchedule(options.PeakLr, Math.Min(Math.Max(1, options.Steps / 20), options.Steps - 1), options.Steps);
        var recent = new Queue<double>();
        int epoch = 0, step = 0;
        while (step < options.Steps)
        {
            foreach (var batch in data.TrainBatches(options.BatchSize, epoch))
            {
                if (step >= options.Steps) break;
                if (batch.BatchSize < options.BatchSize) continue;
                optimizer.Groups[0].Lr = schedule.At(step);
                using var scope = NewDisposeScope();
                var ids = tensor(batch.InputIds, [batch.BatchSize, batch.SequenceLength], device: device);
                var labels = tensor(batch.Labels, [batch.BatchSize, batch.SequenceLength], device: device);
                var loss = ChunkedCrossEntropy.Compute(model.Hidden(ids), model.LmHeadWeight, labels);
                loss.backward();
                nn.utils.clip_grad_norm_(parameters.Select(p => p.parameter), 1.0);
                optimizer.Step();
                optimizer.ZeroGrad();
                double value = loss.item<float>();
                recent.Enqueue(value);
                if (recent.Count > 20) recent.Dequeue();
                step++;
                if (step % 10 == 0 || step == options.Steps) progress?.Invoke(step, recent.Average());
            }
            epoch++;
        }
        if (!onHost) model.to(CPU);
        ModelFolder.SaveByteLevel(model, outputFolder);
        return recent.Average();
    }
}
