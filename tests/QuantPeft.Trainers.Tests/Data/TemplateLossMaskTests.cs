using QuantPeft.Trainers.Data;
using QuantPeft.Trainers.Tests.Data.Templates;
using QuantPeft.Trainers.Tokenizers;

namespace QuantPeft.Trainers.Tests.Data;

/// <summary>
/// Trained spans derived from real templates by rendering prefix by prefix. The expected spans are read off each
/// template by hand: what it emits for an assistant turn after its generation prompt.
/// </summary>
public class TemplateLossMaskTests
{
    private static ChatTemplate Real(string name, string? bos = "<s>", string? eos = "</s>")
    {
        var t = ChatTemplate.FromJinja(File.ReadAllText(Path.Combine(TemplateFixtures.Folder, name + ".jinja")), name + ".jinja", bos, eos);
        t.Clock = () => TemplateFixtures.Now;
        return t;
    }

    private static readonly ChatMessage[] TwoTurns =
    [
        new("user", "Hello"), new("assistant", "Hi there"), new("user", "Who are you"), new("assistant", "An assistant"),
    ];

    private static string[] TrainedTexts(RenderedConversation r) => [.. r.Trained.Select(s => r.Text[s.Start..s.End])];

    [Theory]
    [InlineData("meta-llama-Llama-3.3-70B-Instruct", "Hi there<|eot_id|>", "An assistant<|eot_id|>")]
    [InlineData("meta-llama-Llama-3.2-3B-Instruct", "Hi there<|eot_id|>", "An assistant<|eot_id|>")]
    [InlineData("google-gemma-2-2b-it", "Hi there<end_of_turn>\n", "An assistant<end_of_turn>\n")]
    [InlineData("google-gemma-3-it", "Hi there<end_of_turn>\n", "An assistant<end_of_turn>\n")]
    [InlineData("microsoft-Phi-3.5-mini-instruct", "Hi there<|end|>\n", "An assistant<|end|>\n</s>")]
    [InlineData("mistralai-Mistral-Nemo-Instruct-2407", "Hi there</s>", "An assistant</s>")]
    [InlineData("deepseek-ai-DeepSeek-R1-Distill-Qwen-32B", "Hi there<｜end▁of▁sentence｜>", "An assistant<｜end▁of▁sentence｜>")]
    [InlineData("Qwen-Qwen3-0.6B", null, "<think>\n\n</think>\n\nAn assistant<|im_end|>\n")]
    [InlineData("Qwen-Qwen2.5-7B-Instruct", "Hi there<|im_end|>\n", "An assistant<|im_end|>\n")]
    // Phi-4's user turn opens the assistant turn itself (no generation prompt): the turn is the answer and its end.
    [InlineData("microsoft-phi-4", "Hi there<|im_end|>", "An assistant<|im_end|>")]
    public void AssistantSpansAreWhatTheTemplateEmitsForTheTurn(string template, string? first, string last)
    {
        RenderedConversation r = Real(template).RenderConversation(TwoTurns);
        string[] expected = first is null ? [last] : [first, last];
        Assert.Equal(expected, TrainedTexts(r));
        // Qwen3 drops the (empty) thinking block of a turn once a user turn follows it: that turn is not trained.
        Assert.Equal(first is null ? 1 : 0, r.UntrainedTurns);
        Assert.Equal(r.Text, Real(template).Render(TwoTurns, addGenerationPrompt: false));
    }

    [Fact]
    public void Qwen3ThinkingBlockIsTrainedWithTheAnswer()
    {
        RenderedConversation r = Real("Qwen-Qwen3-0.6B", bos: null, eos: "<|im_end|>").RenderConversation(
            [new("user", "Is 7 prime?"), new("assistant", "<think>\nNo divisor but 1 and 7.\n</think>\n\nYes.")]);
        Assert.Equal(["<think>\nNo divisor but 1 and 7.\n</think>\n\nYes.<|im_end|>\n"], TrainedTexts(r));
        Assert.Equal("<|im_start|>user\nIs 7 prime?<|im_end|>\n<|im_start|>assistant\n", r.Text[..r.Trained[0].Start]);
    }

    [Fact]
    public void MistralNemoSystemPromptLeavesNoTurnAsGenerated()
    {
        // Nemo writes the system prompt into the last message only when that is a user turn: every assistant turn is
        // generated after it, but a conversation that ends with an assistant turn renders without it.
        ChatMessage[] chat = [new("system", "Be brief."), .. TwoTurns];
        RenderedConversation r = Real("mistralai-Mistral-Nemo-Instruct-2407").RenderConversation(chat);
        Assert.DoesNotContain("Be brief.", r.Text);
        Assert.Empty(r.Trained);
        Assert.Equal(2, r.UntrainedTurns);
    }

    [Fact]
    public void TokenBoundaryIsExactAndTheTemplateWritesBosItself()
    {
        var template = Real("meta-llama-Llama-3.3-70B-Instruct", bos: "<s>", eos: "</s>");
        var encoder = new ExampleEncoder(ByteLevelTokenizer.Instance, template);
        TokenizedExample ex = encoder.Encode(DatasetRecord.FromMessages(TwoTurns));
        // One BOS, as the template's text, mapped to the BOS id; no EOS appended after the template's last <|eot_id|>.
        Assert.Equal(ByteLevelTokenizer.Bos, ex.Tokens[0]);
        Assert.Equal(1, ex.Tokens.Count(t => t == ByteLevelTokenizer.Bos));
        Assert.DoesNotContain(ByteLevelTokenizer.Eos, ex.Tokens);
        // The trained tokens decode to exactly the two spans, in order, and each run of targets is contiguous.
        var runs = new List<string>();
        var current = new List<int>();
        for (int i = 0; i < ex.Tokens.Length; i++)
        {
            if (ex.IsTarget[i]) current.Add(ex.Tokens[i]);
            else if (current.Count > 0)
            {
                runs.Add(ByteLevelTokenizer.Instance.Decode([.. current]));
                current.Clear();
            }
        }
        if (current.Count > 0) runs.Add(ByteLevelTokenizer.Instance.Decode([.. current]));
        Assert.Equal(["Hi there<|eot_id|>", "An assistant<|eot_id|>"], runs);
    }

    [Fact]
    public void RecordTheTemplateRefusesIsABadLineNamingFileLineAndTemplateLine()
    {
        using var dir = new TempDir();
        string path = dir.Write("chat.jsonl",
            "{\"messages\": [{\"role\": \"user\", \"content\": \"a\"}, {\"role\": \"assistant\", \"content\": \"b\"}]}\n" +
            "{\"messages\": [{\"role\": \"system\", \"content\": \"s\"}, {\"role\": \"user\", \"content\": \"a\"}, {\"role\": \"assistant\", \"content\": \"b\"}]}\n");
        var options = new DatasetOptions { SequenceLength = 256, Layout = RowLayout.Padded, Seed = 1 };
        var e = Assert.Throws<DatasetFormatException>(() =>
            TrainingDataset.Load(path, ByteLevelTokenizer.Instance, options, 1024, Real("google-gemma-2-2b-it")));
        DatasetLineError error = Assert.Single(e.Errors);
        Assert.Equal(2, error.Line);
        Assert.Equal("chat template 'google-gemma-2-2b-it.jinja' line 1: the template raised: System role not supported", error.Problem);
        Assert.StartsWith($"dataset '{path}': 1 bad line(s): line 2: chat template", e.Message);
    }
}
