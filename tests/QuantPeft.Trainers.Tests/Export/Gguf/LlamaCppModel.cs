using System.Text;
using LLama;
using LLama.Common;
using LLama.Native;

namespace QuantPeft.Trainers.Tests.Export.Gguf;

/// <summary>
/// Tests run llama.cpp's own code on a GGUF file through LLamaSharp: its tokenizer, its forward pass (logits at
/// every position of one batch) and its greedy continuation. Nothing here touches QuantPeft's model code.
/// </summary>
[CollectionDefinition(nameof(LlamaCpp), DisableParallelization = true)]
public sealed class LlamaCpp;

internal sealed class LlamaCppModel : IDisposable
{
    private readonly LLamaWeights _weights;
    private readonly ModelParams _params;

    private LlamaCppModel(LLamaWeights weights, ModelParams parameters)
    {
        _weights = weights;
        _params = parameters;
    }

    public static LlamaCppModel Load(string path, uint context = 128)
    {
        QuantPeft.Trainers.Export.Gguf.LlamaCppQuantizer.HookLog();
        NativeApi.llama_max_devices();   // loads the native library through LLamaSharp's resolver
        var p = new ModelParams(path) { ContextSize = context, BatchSize = context, UBatchSize = context, GpuLayerCount = 0, Threads = 2 };
        // A file llama.cpp cannot read throws here: that is a failed test, never a skipped one.
        return new LlamaCppModel(LLamaWeights.LoadFromFile(p), p);
    }

    public IReadOnlyDictionary<string, string> Metadata => _weights.Metadata;

    private LoraAdapter? _lora;

    /// <summary>Applies a llama.cpp LoRA file (at scale 1) to every context created afterwards.</summary>
    public void UseLora(string path) => _lora = _weights.NativeHandle.LoadLoraFromFile(path);

    private LLamaContext CreateContext()
    {
        var context = _weights.CreateContext(_params);
        if (_lora is LoraAdapter lora) context.NativeHandle.SetLoraAdapters([(lora, 1f)]);
        return context;
    }

    public int[] Tokenize(string text, bool addBos = true) =>
        [.. _weights.Tokenize(text, addBos, special: false, Encoding.UTF8).Select(t => (int)t)];

    /// <summary>Logits (T, V) of one sequence, all positions decoded in one batch.</summary>
    public float[][] Logits(int[] ids)
    {
        using var context = CreateContext();
        var batch = new LLamaBatch();
        for (int i = 0; i < ids.Length; i++) batch.Add((LLamaToken)ids[i], i, (LLamaSeqId)0, logits: true);
        var result = context.Decode(batch);
        if (result != DecodeResult.Ok) throw new InvalidOperationException($"llama_decode: {result}");
        return [.. Enumerable.Range(0, ids.Length).Select(i => context.NativeHandle.GetLogitsIth(i).ToArray())];
    }

    /// <summary>Greedy continuation of <paramref name="prompt"/>: the prompt in one batch, then one token at a time (llama.cpp's KV cache).</summary>
    public int[] Greedy(int[] prompt, int count)
    {
        using var context = CreateContext();
        var batch = new LLamaBatch();
        for (int i = 0; i < prompt.Length; i++) batch.Add((LLamaToken)prompt[i], i, (LLamaSeqId)0, logits: i == prompt.Length - 1);
        var output = new List<int>();
        int position = prompt.Length;
        for (int step = 0; step < count; step++)
        {
            if (context.Decode(batch) != DecodeResult.Ok) throw new InvalidOperationException("llama_decode failed");
            var logits = context.NativeHandle.GetLogitsIth(batch.TokenCount - 1);
            int next = 0;
            for (int v = 1; v < logits.Length; v++) if (logits[v] > logits[next]) next = v;
            output.Add(next);
            batch.Clear();
            batch.Add((LLamaToken)next, position++, (LLamaSeqId)0, logits: true);
        }
        return [.. output];
    }

    /// <summary>log p(ids[t+1] | ids[..t]) for t = 0 … T−2, from llama.cpp's logits (log-softmax in double).</summary>
    public double[] LogProbs(int[] ids) => LogProbsOf(Logits(ids), ids);

    public static double[] LogProbsOf(float[][] logits, int[] ids)
    {
        var result = new double[ids.Length - 1];
        for (int t = 0; t + 1 < ids.Length; t++)
        {
            double max = logits[t].Max(), sum = 0;
            foreach (float l in logits[t]) sum += Math.Exp(l - max);
            result[t] = logits[t][ids[t + 1]] - max - Math.Log(sum);
        }
        return result;
    }

    public void Dispose() => _weights.Dispose();
}
