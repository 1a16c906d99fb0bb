using QuantPeft.Trainers.Data;
using QuantPeft.Trainers.Tokenizers;

namespace QuantPeft.Trainers.Tests.Data;

/// <summary>With the byte-level tokenizer an id is the byte value: BOS 256, EOS 257, PAD 258.</summary>
public class ExampleEncoderTests
{
    private const int B = 256, E = 257;
    private static readonly ExampleEncoder Encoder = new(ByteLevelTokenizer.Instance, ChatTemplate.Default);

    [Fact]
    public void TextTrainsEveryTokenButBos()
    {
        var ex = Encoder.Encode(DatasetRecord.FromText("hi"));
        Assert.Equal([B, 'h', 'i', E], ex.Tokens);
        Assert.Equal([false, true, true, true], ex.IsTarget);
    }

    [Fact]
    public void PromptIsMaskedCompletionAndEosAreTargets()
    {
        var ex = Encoder.Encode(DatasetRecord.FromPromptCompletion("ab", "c"));
        Assert.Equal([B, 'a', 'b', 'c', E], ex.Tokens);
        Assert.Equal([false, false, false, true, true], ex.IsTarget);
    }

    [Fact]
    public void GenerationPromptIsTheTrainedPrefix()
    {
        var record = DatasetRecord.FromPromptCompletion("upper: ab => ", "AB");
        int[] prompt = Encoder.EncodePrompt(record.Prompt!);
        var ex = Encoder.Encode(record);
        Assert.Equal(ex.Tokens.Take(prompt.Length), prompt);
        Assert.True(ex.IsTarget[prompt.Length]);
        Assert.False(ex.IsTarget[prompt.Length - 1]);
    }

    [Fact]
    public void BosAndEosCanBeTurnedOff()
    {
        var ex = new ExampleEncoder(ByteLevelTokenizer.Instance, ChatTemplate.Default, addBos: false, addEos: false)
            .Encode(DatasetRecord.FromPromptCompletion("a", "b"));
        Assert.Equal(['a', 'b'], ex.Tokens);
        Assert.Equal([false, true], ex.IsTarget);
    }

    [Fact]
    public void DefaultTemplateTrainsOnlyAssistantTurnsAndTheirEos()
    {
        var ex = Encoder.Encode(DatasetRecord.FromMessages(
        [
            new("system", "s"), new("user", "u1"), new("assistant", "a1"), new("user", "u2"), new("assistant", "a2"),
        ]));
        string before1 = "<|system|>\ns\n<|user|>\nu1\n<|assistant|>\n";
        string between = "<|user|>\nu2\n<|assistant|>\n";
        var expected = new List<int> { B };
        expected.AddRange(before1.Select(c => (int)c));
        expected.AddRange(['a', '1', E]);
        expected.AddRange(between.Select(c => (int)c));
        expected.AddRange(['a', '2', E]);
        Assert.Equal(expected, ex.Tokens);
        // Targets: exactly a1 + EOS and a2 + EOS, at hand-computed positions.
        int a1 = 1 + before1.Length, a2 = a1 + 3 + between.Length;
        int[] targetPositions = [.. Enumerable.Range(0, ex.Tokens.Length).Where(i => ex.IsTarget[i])];
        Assert.Equal([a1, a1 + 1, a1 + 2, a2, a2 + 1, a2 + 2], targetPositions);
    }

    [Fact]
    public void TrailingUserTurnGetsAnUntrainedEos()
    {
        var ex = Encoder.Encode(DatasetRecord.FromMessages([new("assistant", "a"), new("user", "u")]));
        Assert.Equal(E, ex.Tokens[^1]);
        Assert.False(ex.IsTarget[^1]);
    }

    [Fact]
    public void ChatMlAndLlama3RenderTheirMarkersAndTrainTheEndOfTurn()
    {
        ChatMessage[] chat = [new("user", "hi"), new("assistant", "yo")];
        var chatml = ChatTemplate.Of(ChatTemplateKind.ChatMl).Render(chat);
        Assert.Equal("<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\nyo<|im_end|>\n", string.Concat(chatml.Select(s => s.Text)));
        Assert.Equal("yo<|im_end|>", string.Concat(chatml.Where(s => s.Train).Select(s => s.Text)));
        var llama = ChatTemplate.Of(ChatTemplateKind.Llama3).Render(chat);
        Assert.Equal("<|start_header_id|>user<|end_header_id|>\n\nhi<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\nyo<|eot_id|>",
            string.Concat(llama.Select(s => s.Text)));
        Assert.Equal("yo<|eot_id|>", string.Concat(llama.Where(s => s.Train).Select(s => s.Text)));
    }

    [Fact]
    public void TemplateComesFromChatTemplateJinjaThenTokenizerConfigElseDefault()
    {
        using var dir = new TempDir();
        Assert.Equal(ChatTemplateKind.Default, ChatTemplate.FromModelFolder(dir.Path).Kind);
        dir.Write("tokenizer_config.json", """{"bos_token": "<s>", "chat_template": "{% for m in messages %}[{{ m.role }}]{{ m.content }}{% endfor %}"}""");
        var fromConfig = ChatTemplate.FromModelFolder(dir.Path);
        Assert.Equal(ChatTemplateKind.Jinja, fromConfig.Kind);
        Assert.Equal("[user]hi", fromConfig.Render([new ChatMessage("user", "hi")], addGenerationPrompt: false));
        Assert.Equal("<s>", fromConfig.BosToken);
        dir.Write("chat_template.jinja", "{{ bos_token }}{% for m in messages %}<{{ m.role }}>{{ m.content }}{% endfor %}{% if add_generation_prompt %}<assistant>{% endif %}");
        var fromFile = ChatTemplate.FromModelFolder(dir.Path);
        Assert.Equal("<s><user>hi<assistant>", fromFile.Render([new ChatMessage("user", "hi")], addGenerationPrompt: true));
        Assert.Contains("chat_template.jinja", fromFile.Reason);
        Assert.Equal(ChatTemplateKind.ChatMl, ChatTemplate.Resolve("chatml", dir.Path).Kind);
        Assert.Equal(ChatTemplateKind.Default, ChatTemplate.Resolve("default", dir.Path).Kind);
        Assert.Equal("<s><user>hi", ChatTemplate.Resolve(Path.Combine(dir.Path, "chat_template.jinja"), dir.Path).Render([new ChatMessage("user", "hi")], false));
    }
}
