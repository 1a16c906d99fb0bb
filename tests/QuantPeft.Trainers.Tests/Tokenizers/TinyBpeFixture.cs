namespace QuantPeft.Trainers.Tests.Tokenizers;

/// <summary>
/// A hand-composed byte-level BPE in Hugging Face tokenizer.json form. Byte-level BPE spells a space
/// as 'Ġ' (U+0120: byte 0x20 is not printable, so it maps to 256 + 0x20).
/// Merges, by rank: h e, l l, ll o, he llo, Ġ w, o r, Ġw or.
/// </summary>
internal static class TinyBpeFixture
{
    public const string Json = """
    {
      "version": "1.0",
      "added_tokens": [
        {"id": 0, "content": "<|endoftext|>", "single_word": false, "lstrip": false, "rstrip": false, "normalized": false, "special": true},
        {"id": 16, "content": "<sep>", "single_word": false, "lstrip": false, "rstrip": false, "normalized": false, "special": false}
      ],
      "normalizer": null,
      "pre_tokenizer": {"type": "ByteLevel", "add_prefix_space": false, "trim_offsets": true, "use_regex": true},
      "post_processor": null,
      "decoder": {"type": "ByteLevel", "add_prefix_space": true, "trim_offsets": true, "use_regex": true},
      "model": {
        "type": "BPE", "dropout": null, "unk_token": null, "continuing_subword_prefix": "", "end_of_word_suffix": "",
        "fuse_unk": false, "byte_fallback": false,
        "vocab": {"h": 1, "e": 2, "l": 3, "o": 4, "Ġ": 5, "w": 6, "r": 7, "d": 8,
                  "he": 9, "ll": 10, "llo": 11, "hello": 12, "Ġw": 13, "or": 14, "Ġwor": 15},
        "merges": ["h e", "l l", "ll o", "he llo", "Ġ w", ["o", "r"], "Ġw or"]
      }
    }
    """;
}
