using QuantPeft.Trainers.Tokenizers;

namespace QuantPeft.Trainers.Data;

/// <summary>
/// Turns records into <see cref="TokenizedExample"/>s. Each part (prompt, completion, chat segment)
/// is tokenized on its own, so the boundary between untrained and trained tokens is exact even when
/// a BPE would have merged across it.
/// </summary>
public sealed class ExampleEncoder
{
    private readonly ITextTokenizer _tokenizer;
    private readonly ChatTemplate _template;
    private readonly bool _addBos;
    private readonly bool _addEos;

    /// <summary>Creates an encoder.</summary>
    /// <param name="tokenizer">The model's tokenizer.</param>
    /// <param name="template">Renders <c>messages</c> records.</param>
    /// <param name="addBos">Prepend BOS (when the tokenizer has one).</param>
    /// <param name="addEos">Append EOS unless the example already ends with it.</param>
    public ExampleEncoder(ITextTokenizer tokenizer, ChatTemplate template, bool addBos = true, bool addEos = true)
    {
        _tokenizer = tokenizer;
        _template = template;
        _addBos = addBos;
        _addEos = addEos;
    }

    /// <summary>
    /// The ids a model is given to generate a completion for <paramref name="prompt"/>: exactly the
    /// prefix a prompt/completion record was trained with (BOS if enabled, then the prompt tokens).
    /// </summary>
    public int[] EncodePrompt(string prompt)
    {
        int[] ids = _tokenizer.Encode(prompt);
        return _addBos && _tokenizer.BosId is int bos ? [bos, .. ids] : ids;
    }

    /// <summary>Encodes one record.</summary>
    /// <exception cref="DatasetOptionsException">The template needs an EOS token and the tokenizer has none.</exception>
    public TokenizedExample Encode(DatasetRecord record)
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

        // A Jinja template writes BOS (and EOS where it wants one) itself, as text; the encoder then adds neither.
        bool templated = record.Kind == RecordKind.Messages && _template.Kind == ChatTemplateKind.Jinja;
        if (_addBos && !templated && _tokenizer.BosId is int bos) Add([bos], false);
        switch (record.Kind)
        {
            case RecordKind.Text:
                Add(_tokenizer.Encode(record.Text!), true);
                break;
            case RecordKind.PromptCompletion:
                Add(_tokenizer.Encode(record.Prompt!), false);
                Add(_tokenizer.Encode(record.Completion!), true);
                break;
            case RecordKind.Messages:
                foreach (ChatSegment s in _template.Render(record.Messages!))
                {
                    Add(templated ? EncodeWithSpecialTokens(s.Text) : _tokenizer.Encode(s.Text), s.Train);
                    if (s.EosAfter)
                        Add([_tokenizer.EosId ?? throw new DatasetOptionsException(
                            $"the {_template.Kind} chat template ends assistant turns with EOS, but the tokenizer has no EOS token")], true);
                }
                break;
        }
        // EOS is learned only where it closes trained text; after a trailing user turn it is just a separator.
        if (_addEos && !templated && _tokenizer.EosId is int eos && (tokens.Count == 0 || tokens[^1] != eos))
            Add([eos], targets.Count > 0 && targets[^1]);
        return new TokenizedExample([.. tokens], [.. targets], record.Line);
    }

    /// <summary>
    /// Encodes template text in which the BOS and EOS token texts stand for their ids (as a Hugging Face tokenizer reads
    /// special tokens in text), whatever the tokenizer does with such text itself (SentencePiece would spell them out).
    /// </summary>
    private IEnumerable<int> EncodeWithSpecialTokens(string text)
    {
        var specials = new List<(string Text, int Id)>();
        if (_template.BosToken is { Length: > 0 } b && _tokenizer.BosId is int bosId) specials.Add((b, bosId));
        if (_template.EosToken is { Length: > 0 } e && _tokenizer.EosId is int eosId) specials.Add((e, eosId));
        var ids = new List<int>();
        int at = 0;
        while (at < text.Length)
        {
            int next = -1, id = 0, length = 0;
            foreach (var (special, specialId) in specials)
            {
                int i = text.IndexOf(special, at, StringComparison.Ordinal);
                if (i >= 0 && (next < 0 || i < next)) (next, id, length) = (i, specialId, special.Length);
            }
            if (next < 0) break;
            if (next > at) ids.AddRange(_tokenizer.Encode(text[at..next]));
            ids.Add(id);
            at = next + length;
        }
        if (at < text.Length) ids.AddRange(_tokenizer.Encode(text[at..]));
        return ids;
    }
}
