"""``python -m api``: run the service for development or a demo, and seed demo accounts.

Production runs under gunicorn instead: ``GANXUN_SECRET_KEY=… gunicorn -c gunicorn.conf.py 'api:create_app()'``.
"""

from __future__ import annotations

import os
import secrets
import sys

import click

__all__ = ["main"]

DEMO_STAFF = (
    ("admin", "admin", "系统管理员"),
    ("designer", "designer", "课程设计者"),
    ("evaluator", "evaluator", "评估专家"),
)


@click.group()
def main() -> None:
    """干训服务：启动与演示账号。"""


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="监听地址")
@click.option("--port", default=8000, show_default=True, type=int, help="端口")
@click.option("--debug/--no-debug", default=False, help="Flask 调试模式（自动重载）")
@click.option("--warm/--no-warm", default=True, help="启动后在后台预先载入目录快照、检索索引与编码器、学习需求（/api/ready 随后为 200）")
def serve(host: str, port: int, debug: bool, warm: bool) -> None:
    """用 werkzeug 开发服务器启动（开发与演示用；生产请用 gunicorn）。"""
    from werkzeug.serving import run_simple

    from api import create_app

    from api.services import start_warm_up

    app = create_app({"DEVELOPMENT": True, "DEBUG": debug})
    if warm:
        start_warm_up(app)
    shown = "127.0.0.1" if host in ("0.0.0.0", "::") else host
    click.echo(f"干训服务已启动：http://{shown}:{port}/  （API 文档：http://{shown}:{port}/docs ，按 Ctrl+C 停止）")
    sys.stdout.flush()
    run_simple(host, port, app, threaded=True, use_reloader=debug, use_debugger=debug)


@main.command(name="seed-users")
@click.option("--cadres", "n_cadres", default=3, show_default=True, help="为前 N 名干部各建一个学员账号")
@click.option("--cadre", "cadre_ids", multiple=True, help="为指定干部建学员账号（可多次给出）")
@click.option("--reset", is_flag=True, help="已存在的演示账号也重设密码")
def seed_users(n_cadres: int, cadre_ids: tuple[str, ...], reset: bool) -> None:
    """创建演示账号（管理员、课程设计者、评估者和几名学员）。

    密码取自环境变量 GANXUN_DEMO_PASSWORD（所有演示账号相同）；未设置时为每个新账号随机生成并只打印这一次。
    """
    from api import create_app
    from api.accounts import AccountError, accounts
    from api.graph import graph

    app = create_app({"DEVELOPMENT": True})
    fixed = os.environ.get("GANXUN_DEMO_PASSWORD")
    with app.app_context():
        store = graph().store
        cadres = list(cadre_ids)
        if not cadres:
            cadres = [n.id for _, n in zip(range(n_cadres), store.nodes("Cadre"))]
        plan = [*DEMO_STAFF]
        for k, cadre_id in enumerate(cadres, 1):
            node = store.get_node(cadre_id)
            if node is None:
                raise click.ClickException(f"图谱中没有干部『{cadre_id}』：请先运行 python -m kg build")
            plan.append((f"cadre{k}", "cadre", node.props.get("name", cadre_id), cadre_id))
        for entry in plan:
            username, role, display = entry[:3]
            cadre_id = entry[3] if len(entry) > 3 else None
            password = fixed or secrets.token_urlsafe(9)
            existing = accounts().by_username(username)
            if existing is not None and not reset:
                click.echo(f"  {username:<10} 已存在（{existing.role_name}），未改动")
                continue
            try:
                if existing is None:
                    accounts().create_user(username, password, role, display, cadre_id)
                    action = "创建演示账号"
                else:
                    accounts().update_user(existing.id, role=role, cadre_id=cadre_id, password=password, active=True)
                    action = "重设演示账号"
            except AccountError as exc:  # e.g. a GANXUN_DEMO_PASSWORD the password policy refuses
                raise click.ClickException(f"{username}：{exc}（GANXUN_DEMO_PASSWORD）" if fixed else f"{username}：{exc}")
            accounts().audit("seed-users", action, username, {"role": role, "cadre_id": cadre_id})
            shown = "（GANXUN_DEMO_PASSWORD）" if fixed else password
            click.echo(f"  {username:<10} 密码 {shown:<14} {role:<9} {display}{f' · {cadre_id}' if cadre_id else ''}")


if __name__ == "__main__":
    main()
