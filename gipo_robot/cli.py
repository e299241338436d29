import typer
app = typer.Typer()
@app.command()
def quickstart():
    pass
