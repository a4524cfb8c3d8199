// Ml.Cnn's main sample: an ML.NET pipeline that trains the reference CNN on Fashion-MNIST, then reports accuracy,
// log-loss, per-class precision/recall/F1 and the confusion matrix, writes the training curves as a PNG and keeps
// the trained weights as a checkpoint. By default it uses the 6,000/1,000-image subset embedded in the repository.
//
//   dotnet run -c Release --project samples/FashionMnist [-- --epochs 10 --data DIR --arch reference-cnn --out DIR]
using FashionMnist;

var arguments = Arguments.Parse(args);
SampleRun.Run(arguments, interactive: !Console.IsOutputRedirected);
