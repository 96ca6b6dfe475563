"""Pure optimisation library: allocation and routing.

Nothing here imports the database, the web framework, pydantic or any other ``relieflink``
package; problems come in as frozen dataclasses and numpy arrays and results go out the same way.
"""
