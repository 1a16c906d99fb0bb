using QuantPeft.Trainers.Tokenizers;

namespace QuantPeft.Trainers.Data;

/// <summary>
/// Tokenizes a preference pair into two padded rows (prompt + chosen, prompt + rejected) whose labels are set on
/// the answer's tokens alone (and the EOS that closes it), so a sum over labelled positions is log π(answer | prompt).
/// Each segment is tokenized on its own, so the prompt/answer boundary is exact, as in <see cref="ExampleEncoder"/>.
/// </summary>
public sealed class PreferenceEncoder
{
    private readonly ITextTokenizer _tokenizer;
    private readonly ChatTemplate _template;
    private readonly int _sequenceLength;

    /// <summary>Creates an encoder for rows of <paramref name="sequenceLength"/> positions.</summary>
    public PreferenceEncoder(ITextTokenizer tokenizer, ChatTemplate template, int sequenceLength)
    {
        _tokenizer = tokenizer;
        _template = template;
        _sequenceLength = sequenceLength;
    }

    /// <summary>The chosen and rejected rows of <paramref name="record"/>.</summary>
    /// <exception cref="DatasetFormatException">The prompt alone fills the row, or prompt + answer does not fit; names the file and line.</exception>
    public (TrainingRow Chosen, TrainingRow Rejected) Encode(PreferenceRecord record, string sourcePath)
    {
        var chosen = Example(record, record.Chosen);
        var rejected = Example(record, record.Rejected);
        int prompt = chosen.IsTarget.TakeWhile(t => !t).Count();
        if (prompt >= _sequenceLength)
            throw new DatasetFormatException(sourcePath, [new DatasetLineError(record.Line,
                $"the prompt has {prompt} tokens, as long as or longer than --seq {_sequenceLength} (no room left for an answer)")], 1);
        int pad = _tokenizer.PadId ?? _tokenizer.EosId ?? 0;
        TrainingRow Row(TokenizedExample e, string which)
        {
            if (e.Tokens.Length > _sequenceLength + 1)
                throw new DatasetFormatException(sourcePath, [new DatasetLineError(record.Line,
                    $"prompt + {which} has {e.Tokens.Length} tokens; a row of --seq {_sequenceLength} holds at most {_sequenceLength + 1}")], 1);
            return SequencePadder.Pad([e], _sequenceLength, pad, TruncationPolicy.Error, sourcePath).Rows.Single();
        }
        return (Row(chosen, "chosen"), Row(rejected, "rejected"));
    }

    private TokenizedExample Example(PreferenceRecord record, string answer)
    {
        var tokens = new List<int>();
        var targets = new List<bool>();
        void Add(IEnumerable<int> ids, bool target)
        {
            foreach (int id in ids)
            {
                tokens.Add(id);
                targets.Add(target);
            }
        }
        if (_tokenizer.BosId is int bos) Add([bos], false);
        foreach (ChatSegment s in PreferenceFormatting.Render(record, answer, _template))
        {
            Add(_tokenizer.Encode(s.Text), s.Train);
            if (s.EosAfter && _tokenizer.EosId is int e) Add([e], true);
        }
        // The answer is closed by EOS, which is part of what is scored (the answer ends here, not later).
        if (_tokenizer.EosId is int eos && tokens[^1] != eos) Add([eos], true);
        return new TokenizedExample([.. tokens], [.. targets], record.Line);
    }
}
