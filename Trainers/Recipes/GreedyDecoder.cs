using QuantPeft.Trainers.Data;
using QuantPeft.Trainers.Model;
using QuantPeft.Trainers.Tokenizers;
using TorchSharp;
using static TorchSharp.torch;

namespace QuantPeft.Trainers.Recipes;

/// <summary>
/// Greedy decoding for exact-match evaluation. Prompts of the same token length are decoded together,
/// so no padding or attention mask is needed; each new token re-runs the whole (short) prefix.
/// </summary>
public static class GreedyDecoder
{
    /// <summary>
    /// The exact-match accuracy of <paramref name="model"/> on prompt/completion <paramref name="records"/>:
    /// the share whose greedy continuation (BOS + prompt, up to EOS or the completion's length + 1 tokens)
    /// decodes to exactly the completion.
    /// </summary>
    public static double ExactMatch(CausalLm model, ITextTokenizer tokenizer, IReadOnlyList<DatasetRecord> records, int maxRows = 64)
    {
        var scored = records.Where(r => r.Prompt is not null && r.Completion is not null).ToList();
        if (scored.Count == 0) return 0;
        int hits = 0;
        using var noGrad = no_grad();
        foreach (var group in scored.Select(r => (Record: r, Prompt: Prefix(tokenizer, r.Prompt!))).GroupBy(p => p.Prompt.Length))
        {
            foreach (var chunk in group.Chunk(maxRows))
            {
                int budget = chunk.Max(c => tokenizer.Encode(c.Record.Completion!).Length) + 1;
                var outputs = Generate(model, chunk.Select(c => c.Prompt).ToArray(), budget, tokenizer.EosId, tokenizer.VocabSize);
                for (int i = 0; i < chunk.Length; i++)
                    if (tokenizer.Decode(outputs[i]) == chunk[i].Record.Completion) hits++;
            }
        }
        return (double)hits / scored.Count;
    }

    /// <summary>Greedy continuations of equal-length <paramref name="prompts"/>, each cut at its first EOS (excluded).</summary>
    /// <param name="model">The model.</param>
    /// <param name="prompts">Token ids, all of one length.</param>
    /// <param name="maxNewTokens">Most tokens generated per prompt.</param>
    /// <param name="eos">The end-of-sequence id, if any.</param>
    /// <param name="vocabSize">
    /// Only ids below this are chosen: a model's embedding can have more rows than its tokenizer has tokens (padded
    /// vocabularies; a synthetic model fed the byte-level tokenizer), and those rows decode to nothing. Null: all rows.
    /// </param>
    public static int[][] Generate(CausalLm model, int[][] prompts, int maxNewTokens, int? eos, int? vocabSize = null)
    {
        int n = prompts.Length, length = prompts[0].Length;
        var generated = Enumerable.Range(0, n).Select(_ => new List<int>()).ToArray();
        var done = new bool[n];
        using var scope = NewDisposeScope();
        using var frozen = QuantPeft.Trainers.Adapters.FrozenAdapterWeights.Open();
        var ids = tensor(prompts.SelectMany(p => p.Select(t => (long)t)).ToArray(), [n, length], device: model.LmHeadWeight.device);
        for (int step = 0; step < maxNewTokens && !done.All(d => d); step++)
        {
            using var inner = NewDisposeScope();
            var last = model.Hidden(ids).select(1, -1);                      // (n, H)
            var head = vocabSize is int v && v < model.LmHeadWeight.shape[0] ? model.LmHeadWeight.narrow(0, 0, v) : model.LmHeadWeight;
            var next = nn.functional.linear(last, head).argmax(-1);   // (n)
            long[] tokens = next.cpu().data<long>().ToArray();
            for (int i = 0; i < n; i++)
            {
                if (done[i]) continue;
                if (eos is int e && tokens[i] == e) done[i] = true;
                else generated[i].Add((int)tokens[i]);
            }
            ids = cat([ids, next.unsqueeze(1)], 1).MoveToOuterDisposeScope();
        }
        return generated.Select(g => g.ToArray()).ToArray();
    }

    private static int[] Prefix(ITextTokenizer tokenizer, string prompt)
    {
        int[] body = tokenizer.Encode(prompt);
        return tokenizer.BosId is int bos ? [bos, .. body] : body;
    }
}
