using System.CommandLine;
using QuantPeft.Formats;
using QuantPeft.Trainers.Data;
using QuantPeft.Trainers.Generation;

namespace QuantPeft.Cli.Commands;

/// <summary>
/// <c>qpeft generate MODEL [--adapter A] (--prompt TEXT | --messages FILE)</c>: one continuation, streamed to stdout, with a
/// KV cache; at temperature 0 it is the greedy continuation, the same run after run.
/// </summary>
internal static class GenerateCommand
{
    public static Command Create()
    {
        var flags = new GenerationFlags();
        var prompt = new Option<string?>("--prompt") { Description = "Plain text to continue (BOS first when the tokenizer has one)" };
        var messages = new Option<string?>("--messages") { Description = "A JSON conversation ([{role, content}, ...]) rendered with the model's chat template" };
        var command = new Command("generate", "Generate text with a model (and a trained adapter)");
        flags.AddTo(command);
        command.Add(prompt);
        command.Add(messages);
        command.SetAction(parse => CliRunner.Run(() =>
        {
            string? text = parse.GetValue(prompt), file = parse.GetValue(messages);
            if ((text is null) == (file is null)) throw new QuantPeftException("--prompt / --messages: give exactly one");
            var sampling = flags.Sampling(parse);
            var conversation = file is null ? null : GenerationFlags.ReadMessages(file);
            using var loaded = flags.Load(parse);
            var tokenizer = loaded.Tokenizer;
            var template = ChatTemplate.FromModelFolder(loaded.Folder.StartsWith("synthetic:", StringComparison.Ordinal) ? "" : loaded.Folder);
            int[] ids = conversation is null
                ? [.. tokenizer.BosId is int bos ? [bos] : Array.Empty<int>(), .. tokenizer.Encode(text!)]
                : ChatPrompt.Encode(template, tokenizer, conversation);
            var stops = conversation is null
                ? (IReadOnlySet<int>)(tokenizer.EosId is int eos ? new HashSet<int> { eos } : [])
                : ChatPrompt.StopIds(template, tokenizer);
            using var generator = new TextGenerator(loaded.Model, tokenizer.VocabSize);
            var stream = new GenerationFlags.StreamingText(tokenizer, Console.Out);
            var result = generator.Generate(ids, parse.GetValue(flags.MaxNewTokens), sampling, stops, stream.Add);
            stream.Finish();
            Console.WriteLine();
            Console.Error.WriteLine($"{result.Tokens.Count} tokens in {result.Seconds:0.00} s ({result.Tokens.Count / Math.Max(result.Seconds, 1e-9):0.0} tokens/s){(result.StoppedBy is null ? "" : ", stopped at end of turn")}");
            return CliRunner.Ok;
        }));
        return command;
    }
}
