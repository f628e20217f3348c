console.log('trustmesh: not built yet');
