"""The `lepton` command: log in once, then drive datasets, models, jobs, experiments, nodes and deployments.

lepton login --url http://127.0.0.1:8000 --username demo
lepton datasets upload flowers flowers.csv --label-column species
lepton jobs logs 7 -f
lepton deploy iris --model 3 --alias production
lepton predict iris --inputs '[[5.1, 3.5, 1.4, 0.2]]'
"""

import argparse
import getpass
import json
import sys

from lepton_ai.client import Client
from lepton_ai.config import config_path, load_config, resolve, save_config
from lepton_ai.errors import LeptonError
from lepton_ai.progress import ProgressBar


def table(rows: list[dict], columns: list[str], out) -> None:
    """Plain aligned columns (what `ls` prints)."""
    cells = [[("" if row.get(c) is None else str(row.get(c))) for c in columns] for row in rows]
    widths = [max([len(c), *(len(r[i]) for r in cells)]) for i, c in enumerate(columns)]
    out.write("  ".join(c.upper().ljust(w) for c, w in zip(columns, widths, strict=True)).rstrip() + "\n")
    for row in cells:
        out.write("  ".join(v.ljust(w) for v, w in zip(row, widths, strict=True)).rstrip() + "\n")


def show(args, rows, columns) -> None:
    rows = [r.data if hasattr(r, "data") else r for r in rows]
    if args.json:
        json.dump(rows, args.out, indent=2, default=str)
        args.out.write("\n")
    else:
        table(rows, columns, args.out)


def show_one(args, item) -> None:
    json.dump(item.data if hasattr(item, "data") else item, args.out, indent=2, default=str)
    args.out.write("\n")


def client_of(args) -> Client:
    return Client(args.url, args.token, team=args.team)


# --- commands -----------------------------------------------------------------------------------------------


def cmd_login(args) -> int:
    url, token, _ = resolve(args.url, args.token, None)
    if not args.token:
        username = args.username or input("Username: ")
        password = args.password or getpass.getpass("Password: ")
        token = Client.login(url, username, password, name=args.name).token
    client = Client(url, token, team=args.team)
    me = client.me()  # proves the token works before it is stored
    stored = {**load_config(), "url": url, "token": token}
    if args.team:
        stored["team"] = args.team
    path = save_config(stored)
    args.out.write(f"Logged in to {url} as {me.get('username', '?')}; token saved in {path} (0600).\n")
    return 0


def cmd_datasets_ls(args) -> int:
    show(
        args,
        client_of(args).datasets.list(team=args.team),
        ["id", "name", "task", "latest_version", "latest_status", "team"],
    )
    return 0


def cmd_datasets_upload(args) -> int:
    options = {"label_column": args.label_column, "height": args.height, "width": args.width, "channels": args.channels}
    bar = False if args.json or args.no_wait else ProgressBar(f"dataset {args.name}", stream=args.err)
    dataset = client_of(args).datasets.upload(
        args.name,
        args.file,
        task=args.task,
        wait=not args.no_wait,
        progress=bar,
        **{k: v for k, v in options.items() if v is not None},
    )
    version = dataset.upload_version
    if args.json:
        show_one(args, {"dataset": dataset.data, "version": version.data})
    else:
        args.out.write(
            f"dataset {dataset.id} {dataset.name}: version {version.number} {version.status}"
            f" ({version.sample_count} samples)\n"
        )
    return 0


def cmd_models_ls(args) -> int:
    rows = client_of(args).models.list(team=args.team)
    show(args, rows, ["id", "name", "task", "version_count", "best_accuracy", "smallest_bytes", "team"])
    return 0


def cmd_jobs_ls(args) -> int:
    filters = {"team": args.team, "status": args.status, "kind": args.kind, "ordering": "-created_at"}
    show(args, client_of(args).jobs.list(**filters), ["id", "kind", "status", "progress", "status_reason", "team"])
    return 0


def cmd_jobs_kinds(args) -> int:
    """One row per parameter of each kind (or of --kind), as the server declares it."""
    kinds = [k for k in client_of(args).jobs.kinds() if args.kind in (None, k["kind"])]
    rows = [
        {"kind": k["kind"], **param, "range": _range(param)} for k in kinds if k["submittable"] for param in k["params"]
    ]
    show(args, rows, ["kind", "name", "type", "default", "range", "help"])
    return 0


def _range(param: dict) -> str:
    if "choices" in param:
        return "|".join(str(choice) for choice in param["choices"])
    if "minimum" in param or "maximum" in param:
        return f"{param.get('minimum', '')}..{param.get('maximum', '')}"
    return ""


def cmd_jobs_logs(args) -> int:
    job = client_of(args).jobs.get(args.id)
    for line in job.logs(follow=args.follow):
        level = "" if line["level"] == "info" else f"[{line['level']}] "
        args.out.write(f"{line['created_at'][11:19]} {level}{line['message']}\n")
        args.out.flush()
    return 0


def cmd_jobs_cancel(args) -> int:
    job = client_of(args).jobs.get(args.id).cancel()
    args.out.write(f"job {job.id}: cancel requested ({job.status})\n")
    return 0


def cmd_experiments_ls(args) -> int:
    rows = client_of(args).experiments.list(team=args.team)
    show(args, rows, ["id", "name", "status", "trials_finished", "trials_total", "strategy", "objective", "team"])
    return 0


def cmd_experiments_show(args) -> int:
    experiment = client_of(args).experiments.get(args.id)
    if args.json:
        show_one(args, experiment)
        return 0
    data = experiment.data
    args.out.write(f"experiment {data['id']} {data['name']}: {data['status']} {data.get('status_reason') or ''}\n")
    args.out.write(
        f"model {data['model']} v{data['base_version']}, {data['strategy']} for {data['objective']}, "
        f"at most {data['max_accuracy_drop']} points of accuracy lost\n"
    )
    args.out.write(f"trials {data['trials_finished']}/{data['trials_total']}\n")
    best = data.get("recommended")
    if best:
        args.out.write(
            f"recommended: v{best['version']} {best.get('label', '')} accuracy {best['accuracy']:.4f}, "
            f"{best['bytes']} bytes, {best.get('latency_ms')} ms\n"
        )
    else:
        args.out.write("recommended: none yet\n")
    return 0


def cmd_nodes_ls(args) -> int:
    rows = [
        {**n.data, "gpus": len(n.data["gpus"]), "running_jobs": n.data["running_jobs"]}
        for n in client_of(args).nodes.list()
    ]
    show(args, rows, ["id", "name", "pool", "status", "gpus", "free_gpus", "running_jobs", "heartbeat_age_seconds"])
    return 0


def cmd_deployments_ls(args) -> int:
    rows = [
        {**d.data, "requests_24h": d.data["last_24h"]["requests"]}
        for d in client_of(args).deployments.list(team=args.team)
    ]
    show(args, rows, ["id", "name", "model_name", "version", "alias", "serving_version", "status", "requests_24h"])
    return 0


def cmd_deploy(args) -> int:
    if (args.version is None) == (args.alias is None):
        args.parser.error("give --version or --alias (one of the two)")
    client = client_of(args)
    model = client.models.get(args.model)
    deployment = client.deployments.create(args.name, model=model, version=args.version, alias=args.alias)
    if args.json:
        show_one(args, deployment)
    else:
        args.out.write(
            f"deployment {deployment.id} {deployment.name} serves {deployment.model_name} "
            f"v{deployment.serving_version}: POST {client.base_url.rstrip('/')}{deployment.predict_url}\n"
        )
    return 0


def _inputs(args):
    if args.inputs_file:
        with open(args.inputs_file) as handle:
            return json.load(handle)
    try:
        return json.loads(args.inputs)
    except json.JSONDecodeError as error:
        args.parser.error(f"--inputs is not JSON: {error.msg}")


def cmd_predict(args) -> int:
    # A deployment key works as the token: predict then needs the deployment's id, not its name.
    client = Client(args.url, args.key or args.token, team=args.team)
    ident = int(args.deployment) if str(args.deployment).isdigit() else client.deployments.get(args.deployment).id
    if args.image:
        answer = client.predict_image(ident, args.image, k=args.k)
    else:
        answer = client.predict(ident, _inputs(args), k=args.k)
    if args.json:
        show_one(args, answer)
        return 0
    for index, prediction in enumerate(answer["predictions"]):
        scores = ", ".join(f"{s['name']} {s['probability']:.4f}" for s in prediction["top_k"])
        args.out.write(f"{index}: {scores}\n")
    return 0


# --- parser -----------------------------------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="lepton", description="Drive a Lepton server from the terminal.")
    parser.add_argument("--url", help="server URL (default: $LEPTON_URL, the login's, or http://127.0.0.1:8000)")
    parser.add_argument("--token", help="API token (default: $LEPTON_TOKEN or the login's)")
    parser.add_argument("--team", help="team slug (default: $LEPTON_TEAM, the login's, or your only team)")
    parser.add_argument("--json", action="store_true", help="print JSON instead of tables")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    login = commands.add_parser("login", help=f"get a token and store it in {config_path()}")
    login.add_argument("--username")
    login.add_argument("--password", help="(prompted for when left out)")
    login.add_argument("--name", default="lepton-cli", help="the new token's name")
    login.set_defaults(run=cmd_login)

    def group(name: str, help_text: str):
        sub = commands.add_parser(name, help=help_text).add_subparsers(dest="action", required=True, metavar="ACTION")
        return sub

    datasets = group("datasets", "list and upload datasets")
    datasets.add_parser("ls", help="list datasets").set_defaults(run=cmd_datasets_ls)
    upload = datasets.add_parser("upload", help="upload a CSV, NPZ or image zip as a new version")
    upload.add_argument("name")
    upload.add_argument("file")
    upload.add_argument("--task", choices=["image_classification", "tabular_classification"])
    upload.add_argument("--label-column")
    upload.add_argument("--height", type=int)
    upload.add_argument("--width", type=int)
    upload.add_argument("--channels", type=int, choices=[1, 3])
    upload.add_argument("--no-wait", action="store_true", help="do not wait for the ingest")
    upload.set_defaults(run=cmd_datasets_upload)

    models = group("models", "list models")
    models.add_parser("ls", help="list models").set_defaults(run=cmd_models_ls)

    jobs = group("jobs", "list jobs, follow their logs, cancel them")
    jobs_ls = jobs.add_parser("ls", help="list jobs")
    jobs_ls.add_argument("--status")
    jobs_ls.add_argument("--kind")
    jobs_ls.set_defaults(run=cmd_jobs_ls)
    kinds = jobs.add_parser("kinds", help="the parameters of each job kind (types, ranges, defaults)")
    kinds.add_argument("--kind")
    kinds.set_defaults(run=cmd_jobs_kinds)
    logs = jobs.add_parser("logs", help="print a job's log")
    logs.add_argument("id", type=int)
    logs.add_argument("-f", "--follow", action="store_true", help="keep printing until the job finishes")
    logs.set_defaults(run=cmd_jobs_logs)
    cancel = jobs.add_parser("cancel", help="cancel a job")
    cancel.add_argument("id", type=int)
    cancel.set_defaults(run=cmd_jobs_cancel)

    experiments = group("experiments", "list and show compression experiments")
    experiments.add_parser("ls", help="list experiments").set_defaults(run=cmd_experiments_ls)
    show_parser = experiments.add_parser("show", help="one experiment and its recommendation")
    show_parser.add_argument("id", type=int)
    show_parser.set_defaults(run=cmd_experiments_show)

    nodes = group("nodes", "list nodes")
    nodes.add_parser("ls", help="list nodes and their GPUs").set_defaults(run=cmd_nodes_ls)

    deployments = group("deployments", "list deployments")
    deployments.add_parser("ls", help="list deployments").set_defaults(run=cmd_deployments_ls)

    deploy = commands.add_parser("deploy", help="serve a model version, or follow an alias")
    deploy.add_argument("name")
    deploy.add_argument("--model", required=True, help="model id or name")
    deploy.add_argument("--version", type=int)
    deploy.add_argument("--alias")
    deploy.set_defaults(run=cmd_deploy)

    predict = commands.add_parser("predict", help="top-k classes from a deployment")
    predict.add_argument("deployment", help="deployment id (or name, with an API token)")
    source = predict.add_mutually_exclusive_group(required=True)
    source.add_argument("--inputs", help="a JSON batch, e.g. '[[5.1, 3.5, 1.4, 0.2]]'")
    source.add_argument("--inputs-file", help="a file holding the JSON batch")
    source.add_argument("--image", help="a PNG or JPEG")
    predict.add_argument("-k", type=int, help="classes per sample")
    predict.add_argument("--key", help="a deployment key (lepd_…) instead of the API token")
    predict.set_defaults(run=cmd_predict)
    return parser


def main(argv: list[str] | None = None, *, out=None, err=None) -> int:
    out = out or sys.stdout
    err = err or sys.stderr
    parser = build_parser()
    args = parser.parse_args(argv)
    args.out, args.err, args.parser = out, err, parser
    try:
        return args.run(args)
    except LeptonError as error:
        err.write(f"error: {error.message}\n")
        for field, messages in error.fields.items():
            err.write(f"  {field}: {' '.join(messages)}\n")
        return 1
    except (ValueError, OSError) as error:
        err.write(f"error: {error}\n")
        return 1
    except KeyboardInterrupt:
        return 130
