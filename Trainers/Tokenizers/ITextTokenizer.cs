namespace QuantPeft.Trainers.Tokenizers;

/// <summary>
/// The one view of a tokenizer that data preparation and evaluation need. Implementations never add
/// BOS/EOS on their own: the dataset decides where they go, so the same text always encodes to the
/// same ids whichever tokenizer family produced them.
/// </summary>
public interface ITextTokenizer
{
    /// <summary>Number of ids the tokenizer can produce (largest id + 1); the model's <c>vocab_size</c> must be at least this.</summary>
    int VocabSize { get; }

    /// <summary>Beginning-of-sequence id, or null when the tokenizer has none (Qwen2, for example).</summary>
    int? BosId { get; }

    /// <summary>End-of-sequence id, or null when the tokenizer declares none.</summary>
    int? EosId { get; }

    /// <summary>Padding id, or null when the tokenizer declares none (padding then reuses <see cref="EosId"/>; padded labels are ignored anyway).</summary>
    int? PadId { get; }

    /// <summary>Encodes text to ids without adding BOS or EOS. Special-token text inside <paramref name="text"/> maps to its special id where the tokenizer has one.</summary>
    int[] Encode(string text);

    /// <summary>Decodes ids back to text; BOS, EOS, PAD and other special tokens are skipped.</summary>
    string Decode(ReadOnlySpan<int> ids);
}
